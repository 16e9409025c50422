#!/usr/bin/env python3
"""A minimal integrator's client of the HTTP/JSON API: standard library + httpx, nothing from this repository.

It gets an access token from the identity issuer by the OAuth 2.0 client-credentials grant (its system
account: `supervisionctl auth create NAME --kind client --org … --role …`; the secret is read from
BJSV_CLIENT_SECRET, never from the command line) or takes one ready-made (--token / BJSV_TOKEN, e.g. from
`supervisionctl auth token`), and calls the console over HTTPS verified with the stack's CA
(`supervisionctl auth ca-path`).
"""

from __future__ import annotations

import argparse
import os
import sys

import httpx

SUPERVISION = "/api/v1/bjsv.registry.v1.SupervisionService"
REGISTRY = "/api/v1/bjsv.registry.v1.RegistryService"


def access_token(args: argparse.Namespace) -> str:
    if args.token:
        return args.token
    secret = os.environ.get("BJSV_CLIENT_SECRET", "")
    if not (args.client_id and secret):
        sys.exit("need --token (or BJSV_TOKEN), or --client-id with BJSV_CLIENT_SECRET")
    with httpx.Client(verify=args.ca or True, timeout=30) as http:
        discovery = http.get(f"{args.issuer.rstrip('/')}/.well-known/openid-configuration").raise_for_status()
        resp = http.post(
            discovery.json()["token_endpoint"],
            data={"grant_type": "client_credentials"},
            auth=(args.client_id, secret),  # client_secret_basic (RFC 6749 §2.3.1)
        )
        return resp.raise_for_status().json()["access_token"]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="https://127.0.0.1:8080", help="the console's URL")
    parser.add_argument("--ca", default="", help="CA certificate of the stack (PEM); default: the system's CAs")
    parser.add_argument("--issuer", default="https://127.0.0.1:50050", help="identity issuer URL")
    parser.add_argument("--client-id", default="", help="this system's client id at the issuer")
    parser.add_argument("--token", default=os.environ.get("BJSV_TOKEN", ""), help="a ready access token")
    parser.add_argument("--district", default="08", help="district code whose plans are listed")
    args = parser.parse_args(argv)
    headers = {"Accept": "application/json", "Authorization": f"Bearer {access_token(args)}"}
    with httpx.Client(base_url=args.base, headers=headers, verify=args.ca or True, timeout=30) as http:
        spec = http.get("/api/openapi.json").raise_for_status().json()
        print(f"API {spec['info']['title']}: {len(spec['paths'])} operations")

        agencies = http.post(f"{REGISTRY}/ListAgencies", json={}).raise_for_status().json()["agencies"]
        print("districts:", "、".join(a["display_name"] for a in agencies))

        plans = http.get(f"{SUPERVISION}/ListPlans", params={"district": args.district, "page_size": 5})
        for plan in plans.raise_for_status().json().get("plans", []):
            print(f"plan {plan['name']}: {plan['title']} ({plan.get('candidate_count', 0)} candidates)")

        refused = http.post(f"{SUPERVISION}/GetPlan", json={"name": "plans/999999999"})
        problem = refused.json()
        print(f"refusal: HTTP {refused.status_code} {refused.headers['content-type']} "
              f"reason={problem.get('reason')} grpc={problem['grpc_status']}: {problem['detail']}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
