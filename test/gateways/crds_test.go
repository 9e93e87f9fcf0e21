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
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/keyward/keyward/test/testenv"
)

// moduleDir downloads s's module (the Go module proxy, or the module cache
// when it is there already) and returns the directory it unpacked to. It
// runs in a temporary directory, outside keyward's module, so that go.mod
// and go.sum stay untouched. A module that cannot be fetched fails the
// test: these tests skip only under -short (testenv.SkipsEndToEnd).
func moduleDir(t *testing.T, s crdSource) string {
	t.Helper()
	ref := s.module + "@" + s.version
	cmd := exec.Command("go", "mod", "download", "-json", ref)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr != nil && err == nil {
		err = jerr
	}
	if err != nil || m.Error != "" || m.Dir == "" {
		t.Fatalf("go mod download %s: %v %s%s", ref, err, m.Error, stderr.String())
	}
	return m.Dir
}

// installCRDs installs every source's CRDs in the control plane and
// returns, per source, the names of the CRDs installed.
func installCRDs(t *testing.T, env *testenv.Env) map[string][]string {
	t.Helper()
	installed := map[string][]string{}
	for _, s := range crdSources {
		dir := moduleDir(t, s)
		var paths []string
		for _, p := range s.paths {
			paths = append(paths, filepath.Join(dir, filepath.FromSlash(p)))
		}
		crds, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
			Paths:              paths,
			ErrorIfPathMissing: true,
			MaxTime:            2 * time.Minute,
		})
		if err != nil {
			t.Fatalf("installing the CRDs of %s@%s from %v: %v", s.module, s.version, s.paths, err)
		}
		if len(crds) == 0 {
			t.Fatalf("%s@%s: no CRD in %v", s.module, s.version, s.paths)
		}
		for _, c := range crds {
			installed[s.name] = append(installed[s.name], c.Name)
		}
		sort.Strings(installed[s.name])
		t.Logf("%s@%s: %d CRDs installed from %s", s.module, s.version, len(crds), strings.Join(s.paths, ", "))
	}
	return installed
}

// protoFields returns the field names, in their JSON (lowerCamel) form, of
// the protobuf message named msg in the .proto source src: the fields
// declared at the message's own level or in its oneofs; those of nested
// messages and enums are left out.
func protoFields(src, msg string) (map[string]bool, error) {
	start := strings.Index(src, "message "+msg+" {")
	if start < 0 {
		return nil, fmt.Errorf("message %s not found", msg)
	}
	fields := map[string]bool{}
	var blocks []string // the kind of each open block: message, oneof, enum
	for _, line := range strings.Split(src[start:], "\n") {
		code, _, _ := strings.Cut(line, "//")
		if name, ok := protoFieldName(code); ok && ownLevel(blocks) {
			fields[lowerCamel(name)] = true
		}
		for range strings.Count(code, "{") {
			blocks = append(blocks, strings.Fields(code)[0])
		}
		for range strings.Count(code, "}") {
			blocks = blocks[:len(blocks)-1]
			if len(blocks) == 0 {
				return fields, nil
			}
		}
	}
	return nil, fmt.Errorf("message %s: no closing brace", msg)
}

// ownLevel reports whether a field declared inside blocks belongs to the
// outermost message: every block inside it is a oneof.
func ownLevel(blocks []string) bool {
	if len(blocks) == 0 {
		return false
	}
	for _, b := range blocks[1:] {
		if b != "oneof" {
			return false
		}
	}
	return true
}

// protoFieldName parses a field declaration such as
// `repeated string headers_to_upstream_on_allow = 7 [deprecated = true];`
// or `map<string, string> x = 11;`, and returns its name.
func protoFieldName(code string) (string, bool) {
	lhs, rhs, ok := strings.Cut(code, "=")
	if !ok || !strings.HasSuffix(strings.TrimSpace(rhs), ";") {
		return "", false
	}
	words := strings.Fields(lhs)
	if len(words) < 2 || words[0] == "option" || words[0] == "reserved" {
		return "", false
	}
	return words[len(words)-1], true
}

func lowerCamel(snake string) string {
	parts := strings.Split(snake, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}
