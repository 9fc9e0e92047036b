"""Plain helpers the tests import (conftest modules keep only fixtures)."""
