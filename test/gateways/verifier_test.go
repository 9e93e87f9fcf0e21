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
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/verifier"
)

// TestManifestsMatchTheVerifier: the manifests reach the verifier as
// config/verifier ships it, and name the KeyGroup with the context
// extensions the verifier reads. Every reference to the Service
// keyward-verifier uses its port grpc under a gRPC configuration (or a
// Contour ExtensionService, which is gRPC only) and its port http
// otherwise; every keyward.dev/ key is one of the verifier's extension
// names.
func TestManifestsMatchTheVerifier(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]int64{} // by name
	for _, obj := range readObjects(t, filepath.Join(root, "config", "verifier", "verifier.yaml")) {
		if obj.GetKind() != "Service" || obj.GetName() != "keyward-verifier" {
			continue
		}
		list, _ := obj.Object["spec"].(map[string]any)["ports"].([]any)
		for _, p := range list {
			if port, ok := number(p.(map[string]any)["port"]); ok {
				ports[stringOf(p.(map[string]any)["name"])] = port
			}
		}
	}
	if ports["http"] == 0 || ports["grpc"] == 0 {
		t.Fatalf("config/verifier/verifier.yaml: no Service keyward-verifier with ports http and grpc: %v", ports)
	}
	extensions := map[string]bool{verifier.ExtensionNamespace: true, verifier.ExtensionKeyGroup: true}
	entries, err := os.ReadDir(filepath.Join(docsDir(t), "manifests"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		for _, obj := range readObjects(t, filepath.Join(docsDir(t), "manifests", e.Name())) {
			walk(obj.Object, nil, func(path []string, m map[string]any) {
				if refersToVerifier(m) {
					want := "http"
					if obj.GetKind() == "ExtensionService" || slices.ContainsFunc(path, func(p string) bool { return strings.Contains(strings.ToLower(p), "grpc") }) {
						want = "grpc"
					}
					if port, ok := number(m["port"]); !ok || port != ports[want] {
						t.Errorf("%s: %s: %v: want the verifier's port %s, %d", e.Name(), strings.Join(path, "."), m, want, ports[want])
					}
				}
				for k, v := range m {
					for _, s := range []string{k, stringOf(v)} {
						if strings.HasPrefix(s, "keyward.dev/") && !extensions[s] {
							t.Errorf("%s: %q is not a context extension the verifier reads (%s, %s)", e.Name(), s, verifier.ExtensionNamespace, verifier.ExtensionKeyGroup)
						}
					}
				}
			})
		}
	}
}

// refersToVerifier reports whether m names the verifier's Service with a
// port: a backendRef or service entry, or Istio's service and port.
func refersToVerifier(m map[string]any) bool {
	if _, ok := m["port"]; !ok {
		return false
	}
	return m["name"] == "keyward-verifier" || strings.HasPrefix(stringOf(m["service"]), "keyward-verifier.")
}

// number is a YAML number as decoded into an interface: float64 through
// JSON, or int64.
func number(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), n == float64(int64(n))
	case int64:
		return n, true
	}
	return 0, false
}

func stringOf(v any) string {
	s, _ := v.(string)
	return s
}

// walk calls f on every map inside v, v included, with the keys that lead
// to it.
func walk(v any, path []string, f func([]string, map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(path, v)
		for k, e := range v {
			walk(e, append(slices.Clip(path), k), f)
		}
	case []any:
		for _, e := range v {
			walk(e, path, f)
		}
	}
}
