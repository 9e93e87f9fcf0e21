/*
Copyright 2026 The keyward Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package adversarial is keyward's adversarial suite: probes an attacker
// would try, run against one running `keyward dev` (a real kube-apiserver
// and etcd, the manager with its webhooks over TLS, the verifier) and,
// for the requests, through a real nginx rendering ingress-nginx's
// auth-url template in front of an echoing upstream.
//
// Each probe has one name, guards one class, and makes one assertion of
// what a user would notice (a refusal naming the field, a 401 or 403 with
// its X-Auth-Reason, a header the backend receives). A probe fails when
// the guard of its class is disabled.
//
// Tenants are simulated by impersonation: the dev kubeconfig is cluster
// admin, and a rest.Config with Impersonate set is a tenant. They hold the
// shipped ClusterRoles (config/rbac; bound with RoleBindings, since the
// local control plane aggregates nothing) and Roles with verb "grant" on
// scopes.keyward.dev named "<keygroup>.<scope>".
//
// Classes, tenant side (through the API server and the webhooks):
//
//   - grant: a scope can be granted only by who holds "grant" on it, in
//     that namespace and that KeyGroup, checked at admission and again by
//     the controller before minting.
//   - creator: keyward.dev/created-by, created-by-uid and grant-check are
//     the API server's record of the creator, never the client's; a key
//     created by a ServiceAccount dies with it (and with a token that
//     outlived it).
//   - binding: keyward.dev/application-uid and keygroup-uid bind a key to
//     the parents it was admitted under; a replaced parent never inherits.
//   - immutable: scopes, application, secretName, keyGroup cannot change;
//     revoked is one-way; expiresAt only moves earlier.
//   - match-conditions: the webhooks are skipped (so that an incident can
//     be stopped while they are down) only for an update that does nothing
//     but disable or revoke; combined with any other change they judge it.
//   - lifetime: a key lives within its group's maxKeyLifetime.
//   - delivery: a key's plaintext is minted by keyward, never taken from a
//     Secret the tenant planted, and a key never takes over another key's
//     delivery Secret.
//   - status: a key's status is written by keyward only, and is not what
//     makes a key work.
//   - record: the hashed records live in the operator's namespace, which
//     tenants can neither write nor read; a look-alike elsewhere is ignored.
//   - deletion: deleting a recently used key, or the Application or
//     KeyGroup holding one, needs keyward.dev/confirm-delete.
//   - state: no key is created under a revoked Application.
//   - limits: maxKeysPerApplication and maxApplications.
//   - scopes: a key's scopes exist in its group; KeyGroups are not the
//     tenant's to widen.
//   - external-id: an Application's externalID is unique in its group and
//     fixed once set.
//   - source-ranges: a key's allowedSourceRanges lie within its group's.
//
// Classes, request side: through nginx rendering ingress-nginx's
// template, through a plain nginx auth_request that passes the client's
// headers on (docs/ingress-nginx.md), or, marked "(direct)", straight at
// the verifier, as a peer that is not a trusted proxy or a proxy that
// forwards what nginx itself would refuse:
//
//   - authority: the Host a client sends cannot end the authority early
//     (Host: api.example.com:? and the like are "403 path").
//   - ambiguity: every statement of the original method and URI agrees,
//     and method-override headers naming another method are refused.
//   - path: double encoding, encoded slashes, backslashes, NUL, ";" and
//     over-long paths are "403 path"; dot segments and slashes are
//     resolved as the upstream will, so a scope's prefix cannot be escaped.
//   - credential: one credential only, never from the query string, with
//     a valid checksum.
//   - state: revoked, disabled and expired keys and keys of revoked
//     Applications are refused with their reason.
//   - tenant: a key works only on its own KeyGroup's URL, in its own
//     namespace.
//   - source: X-Real-IP and X-Forwarded-For are not believed from a peer
//     that is not a trusted proxy.
//   - scope: a key's scope covers the method and the path, on a segment
//     boundary.
//   - response-headers: the X-Auth-* headers a backend trusts come from the
//     verifier, never from the client.
//
// One `keyward dev` serves every probe; the probes run in parallel and the
// suite takes well under a minute.
//
// The suite runs in `make test`. Without nginx or the control plane it
// fails; `go test -short` skips it unless KEYWARD_REQUIRE_E2E=1.
package adversarial
