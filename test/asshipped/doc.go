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

// Package asshipped runs keyward as shipped: it renders config/default (and
// charts/keyward with its default values), applies everything but the
// Deployments to a real control plane with RBAC enforced, and runs the
// manager's and the verifier's Deployments as processes with exactly their
// container arguments and environment, authenticated with tokens of their
// own ServiceAccounts. Then it plays the README's scenario against them:
// the samples applied, a key issued, verified as ingress-nginx asks,
// its last use written by the verifier, revoked (401 after), the webhook
// certificates issued and injected by the manager, an invalid APIKey
// refused by the webhook through its Service. TestRuleRemoved takes one
// rule away from a shipped role and shows that the scenario fails where
// that rule is needed.
//
// The harness stands in for the kubelet, the container runtime, the CNI
// plugin, kube-proxy and the EndpointSlice controller (Kubelet.Run):
//
//   - each pod is this test binary re-executed in new mount, network, UTS
//     and IPC namespaces (PodInit), which mounts the pod's own /run and
//     /tmp, the token, ca.crt and namespace read-only at
//     /var/run/secrets/kubernetes.io/serviceaccount, each emptyDir, makes
//     the root file system read-only (readOnlyRootFilesystem), sets the
//     hostname, becomes the image's non-root user with no_new_privs
//     (allowPrivilegeEscalation: false) and executes the entrypoint;
//   - the token comes from the TokenRequest API; the environment is the
//     container's, with $(VAR) expanded and the downward API resolved
//     (fieldRef, resourceFieldRef), plus KUBERNETES_SERVICE_HOST/PORT,
//     HOSTNAME and HOME; the arguments have $(VAR) expanded;
//   - each pod has a veth pair to the host and an address of its own, so
//     every port is the Deployment's: nothing is remapped; inside it,
//     127.0.0.1:443 leads to the API server;
//   - the readiness probe gates the EndpointSlice of each Service that
//     selects the pod; the API server reaches the webhook Service through
//     that slice (--enable-aggregator-routing);
//   - pods stop with SIGTERM, then SIGKILL after
//     terminationGracePeriodSeconds.
//
// The API server's audit log of keyward-system's ServiceAccounts is the
// evidence: which requests each component made with its token, and which
// were refused. A step gives up as soon as a request of keyward's is
// refused or a pod exits.
//
// Deviations from the Deployments, also logged by each test:
//
//   - one replica each, not 2: no scheduler, so topologySpreadConstraints
//     and the PodDisruptionBudgets are not exercised;
//   - no image: the binary built from this checkout as the Dockerfile
//     builds it (CGO_ENABLED=0, -trimpath) runs as /keyward, over the host's
//     root file system mounted read-only instead of the distroless image's;
//   - the API server is reached at 127.0.0.1:443 inside the pod, forwarded
//     by the harness (kube-proxy's part), not at a Service IP: the test API
//     server's certificate names only 127.0.0.1 and localhost;
//   - the token is bound to no Pod object (none exists) and not refreshed;
//   - no ClusterIP routing or DNS: EndpointSlices are written by the
//     harness, and the test calls the verifier at the endpoint of the
//     Service that its KeyGroup's verifyURL names, as ingress-nginx does;
//   - no <SERVICE>_SERVICE_HOST variables besides KUBERNETES_SERVICE_*;
//     /etc/hosts and /etc/resolv.conf are the host's; a pod reaches no other
//     pod;
//   - the readiness probe runs until it first succeeds; the liveness probe
//     does not run;
//   - resource requests and limits are not enforced (no cgroup), though
//     GOMEMLIMIT is resolved from limits.memory;
//   - seccompProfile RuntimeDefault is not applied; capabilities are gone
//     by running as a non-root user with no_new_privs, but the bounding set
//     is not cleared;
//   - emptyDirs are tmpfs.
//
// It needs root, ip and nsenter (iproute2, util-linux) and kubectl
// (kustomize); without them the tests skip, or fail with
// KEYWARD_REQUIRE_E2E=1. Under -short they skip.
package asshipped
