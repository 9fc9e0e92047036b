"""Reconcile 10,000 subscribers against the RouterOS simulator over TCP.

    .venv/bin/python bench/mikrotik_reconcile.py [--subscribers 10000] [--latency-ms 0]

Prints, for a first full sync, a no-op reconcile and a reconcile after 1% drift (hand edits
on the router): wall time, the commands the simulator received (API round trips as
sentences) and what the driver applied. The simulator runs in this process, so its CPU
time is included (a real router's is not). Mix: 60% PPPoE and 10% hotspot kept on the router
(mode "api"), 30% static-IP customers with queues; 5% suspended.
"""

from __future__ import annotations

import argparse
import random
import time

from jasiyo.drivers.mikrotik import MikrotikDriver
from jasiyo.drivers.mikrotik.sim import RouterOSSim
from jasiyo.drivers.routerstate import RouterConfig
from jasiyo.network import Access, DesiredState, Service

PLANS = {"5M": "5M/5M", "10M": "10M/10M 20M/20M 8M/8M 16/16", "20M": "20M/20M"}


def population(n: int, rng: random.Random) -> list[DesiredState]:
    out = []
    for i in range(n):
        plan = rng.choice(list(PLANS))
        service = Service.PPPOE if i % 10 < 6 else Service.STATIC if i % 10 < 9 else Service.HOTSPOT
        suspended = rng.random() < 0.05
        ip = f"10.{100 + i // 62500}.{i // 250 % 250}.{i % 250 + 1}"
        out.append(
            DesiredState(
                username=f"cust{i:05d}",
                service=service,
                access=Access.WALLED_GARDEN if suspended else Access.ALLOW,
                rate_limit="512k/512k" if suspended else PLANS[plan],
                plan=plan,
                ip=ip if service == Service.STATIC else None,
                password=f"pw{i}",
            )
        )
    return out


def drift(sim: RouterOSSim, desired: list[DesiredState], rng: random.Random) -> int:
    """Hand edits on 1% of subscribers: deleted queues, removed list entries, changed
    profiles, deleted secrets."""
    picked = rng.sample(desired, len(desired) // 100)
    for d in picked:
        tag = f"jasiyo:sub={d.username}"
        if d.service == Service.STATIC and d.access == Access.ALLOW:
            sim.state.remove_where("/queue/simple", comment=tag)
        elif d.service == Service.STATIC:
            sim.state.remove_where("/ip/firewall/address-list", comment=tag)
        elif d.service == Service.PPPOE and rng.random() < 0.5:
            sim.state.update_where("/ppp/secret", {"comment": tag}, profile="default")
        elif d.service == Service.PPPOE:
            sim.state.remove_where("/ppp/secret", comment=tag)
        else:
            sim.state.update_where("/ip/hotspot/user", {"comment": tag}, disabled="yes")
    return len(picked)


def run(label: str, sim: RouterOSSim, driver: MikrotikDriver, desired: list[DesiredState]) -> None:
    sim.stats.reset()
    started, cpu = time.perf_counter(), time.process_time()
    report = driver.reconcile(desired)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{label:<22} {wall:7.3f} s wall {cpu:7.3f} s cpu {sim.stats.sentences:6d} commands"
        f"  {report.summary()}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subscribers", type=int, default=10_000)
    ap.add_argument(
        "--latency-ms", type=float, default=0.0, help="simulated router latency before each reply"
    )
    args = ap.parse_args()
    rng = random.Random(42)
    desired = population(args.subscribers, rng)
    with RouterOSSim(users={"jasiyo": "bench"}) as sim:
        sim.faults.latency_s = args.latency_ms / 1000
        config = RouterConfig(
            host="127.0.0.1",
            port=sim.port,
            username="jasiyo",
            password="bench",
            mode="api",
            pay_page="10.200.0.1",
            timeout=30,
        )
        with MikrotikDriver(config) as driver:
            print(
                f"{args.subscribers} subscribers, simulator latency {args.latency_ms} ms; "
                "cpu = driver + simulator (same process)"
            )
            run("first full sync", sim, driver, desired)
            run("no-op reconcile", sim, driver, desired)
            run("no-op reconcile again", sim, driver, desired)
            n = drift(sim, desired, rng)
            run(f"after drift ({n} subs)", sim, driver, desired)
            run("no-op after repair", sim, driver, desired)


if __name__ == "__main__":
    main()
