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

// Package hack holds the tests of the repository's own tooling.
package hack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/test/testenv"
)

// copyTree copies the files git would commit (tracked and untracked, not
// ignored) into a scratch directory, so the test can break them.
func copyTree(t *testing.T, root string) string {
	t.Helper()
	dst := t.TempDir()
	cmd := exec.Command("bash", "-c", `git ls-files -co --exclude-standard -z | grep -zv '^bin/' | xargs -0 cp --parents -t "$0"`, dst)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copying the tree: %v\n%s", err, out)
	}
	cmd = exec.Command("git", "init", "-q")
	cmd.Dir = dst
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	return dst
}

func makeVerify(t *testing.T, root, dir string) (string, error) {
	t.Helper()
	cmd := exec.Command("make", "--no-print-directory", "-C", dir, "verify", "LOCALBIN="+filepath.Join(root, "bin"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestVerifyCatchesStaleGeneratedFiles(t *testing.T) {
	if testenv.SkipsEndToEnd() {
		t.Skip("runs make verify (controller-gen) six times on copies of the tree; runs in make test, not make test-unit (-short); KEYWARD_REQUIRE_E2E=1 requires it")
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tree := copyTree(t, root)
	if out, err := makeVerify(t, root, tree); err != nil {
		t.Fatalf("make verify fails on the tree as it is: %v\n%s", err, out)
	}

	tests := []struct {
		name    string
		file    string
		breakIt func(string) string
	}{
		{"CRD", "config/crd/bases/keyward.dev_apikeys.yaml", func(s string) string {
			return strings.Replace(s, "maxItems: 32", "maxItems: 33", 1)
		}},
		{"deepcopy", "api/v1alpha1/zz_generated.deepcopy.go", func(s string) string {
			return strings.Replace(s, "func (in *APIKey) DeepCopyInto(out *APIKey) {\n", "func (in *APIKey) DeepCopyInto(out *APIKey) {\n\t// stale\n", 1)
		}},
		{"API type changed without regenerating", "api/v1alpha1/apikey_types.go", func(s string) string {
			return strings.Replace(s, "// +kubebuilder:validation:MaxItems=32", "// +kubebuilder:validation:MaxItems=16", 1)
		}},
		{"webhook configuration", "config/webhook/manifests.yaml", func(s string) string {
			return strings.Replace(s, "timeoutSeconds: 5", "timeoutSeconds: 10", 1)
		}},
		{"webhook marker changed without regenerating", "webhook/webhook.go", func(s string) string {
			return strings.Replace(s, "resources=apikeys,verbs=create;update;delete", "resources=apikeys,verbs=create;update", 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := copyTree(t, root)
			path := filepath.Join(tree, tt.file)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			broken := tt.breakIt(string(b))
			if broken == string(b) {
				t.Fatalf("the test's edit did not change %s", tt.file)
			}
			if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := makeVerify(t, root, tree)
			if err == nil {
				t.Fatalf("make verify passed with a stale %s:\n%s", tt.file, out)
			}
			if !strings.Contains(out, "is stale") || !strings.Contains(out, "make generate manifests") {
				t.Errorf("make verify does not say which file is stale and what to run:\n%s", out)
			}
		})
	}
}
