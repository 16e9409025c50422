#!/usr/bin/env python3
"""A minimal integrator's client of the HTTP/JSON API: standard library + httpx, nothing from this repository."""

from __future__ import annotations

import argparse
import sys

import httpx

SUPERVISION = "/api/v1/bjsv.registry.v1.SupervisionService"
REGISTRY = "/api/v1/bjsv.registry.v1.RegistryService"


def client(args: argparse.Namespace) -> httpx.Client:
    headers = {"Accept": "application/json"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    else:  # development only, until the identity issuer is merged (see README)
        headers.update({"x-bjsv-org": args.org, "x-bjsv-role": args.role})
    return httpx.Client(base_url=args.base, headers=headers, verify=args.ca or True, timeout=30)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", default="https://127.0.0.1:8080")
    parser.add_argument("--token", default="", help="OAuth 2.0 access token from the identity issuer")
    parser.add_argument("--ca", default="", help="CA certificate of the stack (PEM)")
    parser.add_argument("--org", default="agencies/08")
    parser.add_argument("--role", default="district-agency")
    args = parser.parse_args(argv)
    with client(args) as http:
        spec = http.get("/api/openapi.json").raise_for_status().json()
        print(f"API {spec['info']['title']}: {len(spec['paths'])} operations")

        agencies = http.post(f"{REGISTRY}/ListAgencies", json={}).raise_for_status().json()["agencies"]
        print("districts:", "、".join(a["display_name"] for a in agencies))

        district = args.org.split("/")[-1]
        plans = http.get(f"{SUPERVISION}/ListPlans", params={"district": district, "page_size": 5})
        for plan in plans.raise_for_status().json().get("plans", []):
            print(f"plan {plan['name']}: {plan['title']} ({plan.get('candidate_count', 0)} candidates)")

        refused = http.post(f"{SUPERVISION}/GetPlan", json={"name": "plans/999999999"})
        problem = refused.json()
        print(f"refusal: HTTP {refused.status_code} {refused.headers['content-type']} "
              f"reason={problem.get('reason')} grpc={problem['grpc_status']}: {problem['detail']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
