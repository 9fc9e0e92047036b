"""The agent's customer-facing web listener: health, provider callbacks (and the portal)."""
