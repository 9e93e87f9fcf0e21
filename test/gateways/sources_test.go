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

package gateways

import "k8s.io/apimachinery/pkg/runtime/schema"

// crdSource is where one gateway publishes its CRDs: a Go module at a
// pinned version and the paths of the CRD files (or directories of them)
// inside the module's zip. Every version pin of this package is here.
type crdSource struct {
	name    string // the key guides refer to
	module  string
	version string
	paths   []string
}

// The one place the versions are pinned. A guide names the module@version
// it was checked against; TestGuidesNameWhatWasChecked keeps them equal.
var crdSources = []crdSource{
	{
		// The experimental channel: HTTPRoute's ExternalAuth filter is in it
		// only. The channel's ValidatingAdmissionPolicy in the same
		// directory is not a CRD and is not installed.
		name: "gateway-api", module: "sigs.k8s.io/gateway-api", version: "v1.6.3",
		paths: []string{"config/crd/experimental"},
	},
	{
		name: "envoy-gateway", module: "github.com/envoyproxy/gateway", version: "v1.9.1",
		paths: []string{"charts/gateway-helm/charts/crds/crds/generated"},
	},
	{
		// Istio publishes no semantic versions to the module proxy: this is
		// its master branch of 2026-08-27, commit eed52ebb66ad.
		name: "istio", module: "istio.io/istio", version: "v0.0.0-20260827124520-eed52ebb66ad",
		paths: []string{"manifests/charts/base/files/crd-all.gen.yaml"},
	},
	{
		name: "contour", module: "github.com/projectcontour/contour", version: "v1.33.8",
		paths: []string{"examples/contour/01-crds.yaml"},
	},
	{
		// The version the end-to-end tests build (test/e2e/traefik.go).
		name: "traefik", module: "github.com/traefik/traefik/v3", version: "v3.6.12",
		paths: []string{"docs/content/reference/dynamic-configuration/kubernetes-crd-definition-v1.yml"},
	},
}

// meshConfigSource holds Istio's MeshConfig protobuf definition, against
// which the field names of istio-meshconfig.yaml are checked: mesh config
// is istiod's input, not an object the API server validates.
var meshConfigSource = crdSource{
	name: "istio-api", module: "istio.io/api", version: "v1.32.0",
	paths: []string{"mesh/v1alpha1/config.proto"},
}

// unchecked are the kinds in the manifests whose CRDs no module the proxy
// serves publishes, with the reason the guide states. Objects of these kinds
// are reported, not dry-run; every other object must be accepted.
var unchecked = map[schema.GroupKind]string{
	{Group: "gateway.kgateway.dev", Kind: "GatewayExtension"}: kgatewayNotServed,
	{Group: "gateway.kgateway.dev", Kind: "TrafficPolicy"}:    kgatewayNotServed,
}

const kgatewayNotServed = "kgateway's CRDs: the Go module proxy refuses github.com/kgateway-dev/kgateway/v2 (403, not served)"

// guide is one page of docs/gateways, the manifests it includes and the
// CRD sources they were checked against.
type guide struct {
	doc       string
	manifests []string
	sources   []string
}

var guides = []guide{
	{doc: "envoy-gateway.md", manifests: []string{"envoy-gateway.yaml", "envoy-gateway-http.yaml"}, sources: []string{"gateway-api", "envoy-gateway"}},
	{doc: "istio.md", manifests: []string{"istio.yaml", "istio-meshconfig.yaml"}, sources: []string{"gateway-api", "istio", "istio-api"}},
	{doc: "contour.md", manifests: []string{"contour.yaml"}, sources: []string{"contour"}},
	{doc: "kgateway.md", manifests: []string{"kgateway.yaml"}, sources: []string{"gateway-api"}},
	{doc: "traefik.md", manifests: []string{"traefik.yaml"}, sources: []string{"gateway-api", "traefik"}},
	{doc: "cilium.md", manifests: []string{"cilium.yaml"}, sources: []string{"gateway-api"}},
	{doc: "nginx-gateway-fabric.md"},
	{doc: "migrate-from-ingress-nginx.md", manifests: []string{"migrate-from-ingress-nginx.yaml"}, sources: []string{"gateway-api"}},
}

// helmValues are manifests that are not Kubernetes objects but values
// for a chart, checked by their own function instead of a dry run.
var helmValues = map[string]bool{"istio-meshconfig.yaml": true}
