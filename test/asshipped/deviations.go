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

package asshipped

import (
	appsv1 "k8s.io/api/apps/v1"
)

// describe records where running d here differs from a cluster running it,
// whatever the harness resolves faithfully (arguments, environment,
// downward API, token, user, read-only root, emptyDirs, Services'
// endpoints, grace period).
func describe(d *appsv1.Deployment, dev *Deviations) {
	spec := &d.Spec.Template.Spec
	c := &spec.Containers[0]
	dev.Add("the image is not pulled: the binary built from this checkout as the Dockerfile builds it (CGO_ENABLED=0, -trimpath) runs as its /keyward entrypoint, over the host's root file system mounted read-only instead of the distroless image's")
	dev.Add("the API server is reached at KUBERNETES_SERVICE_HOST=127.0.0.1, port 443, inside each pod's network namespace, forwarded by the harness (kube-proxy's part): the test API server's certificate names 127.0.0.1 and localhost, not a Service IP")
	dev.Add("the ServiceAccount token is a TokenRequest token of the pod's ServiceAccount, bound to no Pod object (no Pod exists) and not refreshed (it lives an hour)")
	dev.Add("Services have no ClusterIP routing or DNS: the harness writes each Service's EndpointSlice (the EndpointSlice controller's part) once the pod is ready; the API server calls the webhook Service's endpoint (--enable-aggregator-routing); the test calls the verifier at the endpoint of the Service its KeyGroup's verifyURL names, as ingress-nginx does")
	dev.Add("service links: no <SERVICE>_SERVICE_HOST/PORT variables besides KUBERNETES_SERVICE_HOST/PORT; /etc/hosts and /etc/resolv.conf are the host's")
	dev.Add("each pod's network is one veth pair to the host (a /30): other pods are not reachable from it")
	if c.ReadinessProbe != nil {
		dev.Add("readiness probe: run until it first succeeds, then the endpoints are written; it is not repeated")
	}
	if c.LivenessProbe != nil {
		dev.Add("liveness probe: not run")
	}
	if len(c.Resources.Requests) > 0 || len(c.Resources.Limits) > 0 {
		dev.Add("resources: requests and limits are not enforced (no cgroup)")
	}
	if sc := spec.SecurityContext; sc != nil && sc.SeccompProfile != nil {
		dev.Add("seccompProfile %s: not applied", sc.SeccompProfile.Type)
	}
	if sc := c.SecurityContext; sc != nil && sc.Capabilities != nil && len(sc.Capabilities.Drop) > 0 {
		dev.Add("capabilities drop %v: met by running as the non-root user with no_new_privs (no effective or permitted capabilities), but the bounding set is not cleared", sc.Capabilities.Drop)
	}
	for _, v := range spec.Volumes {
		if v.EmptyDir != nil {
			dev.Add("emptyDir %s: a tmpfs, not a directory on the node's disk", v.Name)
		}
	}
}
