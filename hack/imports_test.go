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

package hack

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/keyward/keyward/test/testenv"
)

// TestImportDirections keeps imports pointing one way (DESIGN §5, and
// docs/architecture.md): api ← domain packages ← controllers / webhook /
// verifier ← wiring ← commands. It reads every package's transitive
// dependencies, test code aside; depguard (make lint) holds the direct
// imports to the same rules.
func TestImportDirections(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const m = "github.com/keyward/keyward/"
	tests := []struct {
		packages  string
		forbidden []string
	}{
		// The hot path needs nothing of the manager.
		{"./verifier/...", []string{"controllers", "webhook", "internal/manager", "internal/cmd", "internal/dev"}},
		// Admission shares rules with the controllers, never their code.
		{"./webhook/...", []string{"controllers", "verifier", "internal/manager", "internal/cmd", "internal/dev"}},
		{"./controllers/...", []string{"webhook", "verifier", "internal/manager", "internal/cmd", "internal/dev"}},
		// Domain packages depend on api and each other only.
		{"./internal/rules/... ./internal/record/... ./internal/keys/... ./internal/grants/... ./internal/index/...",
			[]string{"controllers", "webhook", "verifier", "internal/manager", "internal/cmd", "internal/dev"}},
		{"./api/...", []string{"controllers", "webhook", "verifier", "internal/"}},
		// The kubectl plugin is a client: domain packages, no component.
		{"./cmd/...", []string{"controllers", "webhook", "verifier", "internal/manager", "internal/cmd", "internal/dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.packages, func(t *testing.T) {
			args := append([]string{"list", "-deps"}, strings.Fields(tt.packages)...)
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", tt.packages, err)
			}
			for _, dep := range strings.Fields(string(out)) {
				rest, ok := strings.CutPrefix(dep, m)
				if !ok {
					continue
				}
				for _, f := range tt.forbidden {
					if rest == f || strings.HasPrefix(rest, strings.TrimSuffix(f, "/")+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(rest, f)) {
						t.Errorf("%s depends on %s", tt.packages, dep)
					}
				}
			}
		})
	}
}
