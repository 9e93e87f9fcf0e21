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

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestIstioMeshConfigFields checks istio-meshconfig.yaml, the istiod Helm
// values that declare the extension providers, against the MeshConfig
// protobuf of istio.io/api: every key must be a field of the message it
// sits in. The API server never sees mesh config, so a misspelt key would
// otherwise surface only as a provider istiod ignores.
func TestIstioMeshConfigFields(t *testing.T) {
	env.Need(t) // fetches from the module proxy: not under -short
	dir := moduleDir(t, meshConfigSource)
	src, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(meshConfigSource.paths[0])))
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]map[string]bool{}
	for _, msg := range []string{"MeshConfig", "ExtensionProvider", "EnvoyExternalAuthorizationHttpProvider", "EnvoyExternalAuthorizationGrpcProvider"} {
		if fields[msg], err = protoFields(string(src), msg); err != nil {
			t.Fatalf("%s@%s: %v", meshConfigSource.module, meshConfigSource.version, err)
		}
		if len(fields[msg]) == 0 {
			t.Fatalf("%s@%s: message %s has no field", meshConfigSource.module, meshConfigSource.version, msg)
		}
	}
	// The parser found the fields the guide relies on, so that a key it
	// reports unknown is unknown to Istio.
	for msg, field := range map[string]string{"MeshConfig": "extensionProviders", "ExtensionProvider": "envoyExtAuthzHttp", "EnvoyExternalAuthorizationHttpProvider": "pathPrefix"} {
		if !fields[msg][field] {
			t.Fatalf("%s@%s: %s.%s not found: the .proto parser is out of date", meshConfigSource.module, meshConfigSource.version, msg, field)
		}
	}
	if fields["EnvoyExternalAuthorizationHttpProvider"]["contextExtensions"] {
		t.Fatal("Istio's HTTP provider has contextExtensions now (istio/istio#59390): revisit docs/gateways/istio.md")
	}
	b, err := os.ReadFile(filepath.Join(docsDir(t), "manifests", "istio-meshconfig.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		MeshConfig map[string]any `json:"meshConfig"`
	}
	if err := yaml.UnmarshalStrict(b, &values); err != nil {
		t.Fatal(err)
	}
	checkKeys(t, "meshConfig", values.MeshConfig, fields["MeshConfig"])
	providers, _ := values.MeshConfig["extensionProviders"].([]any)
	if len(providers) == 0 {
		t.Fatal("meshConfig.extensionProviders: none")
	}
	for _, p := range providers {
		provider, _ := p.(map[string]any)
		checkKeys(t, "extensionProviders[]", provider, fields["ExtensionProvider"])
		for key, msg := range map[string]string{"envoyExtAuthzHttp": "EnvoyExternalAuthorizationHttpProvider", "envoyExtAuthzGrpc": "EnvoyExternalAuthorizationGrpcProvider"} {
			if sub, ok := provider[key].(map[string]any); ok {
				checkKeys(t, "extensionProviders[]."+key, sub, fields[msg])
			}
		}
	}
}

func checkKeys(t *testing.T, where string, obj map[string]any, fields map[string]bool) {
	t.Helper()
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fields[k] {
			t.Errorf("%s.%s: not a field of %s@%s's MeshConfig", where, k, meshConfigSource.module, meshConfigSource.version)
		}
	}
}
