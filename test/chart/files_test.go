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

package chart

// Checks that need neither Helm nor a control plane: the chart's copies of
// config/, its values against its schema and README, and the metrics its
// alerts name.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// copies maps each file the chart carries under files/ to its original in
// config/, from the lists config/ itself keeps: every CRD base, the
// resources of config/rbac's kustomization, the generated webhook
// configurations.
func copies(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{"webhook/manifests.yaml": "webhook/manifests.yaml"}
	bases, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRD in config/crd/bases: %v", err)
	}
	for _, p := range bases {
		m["crds/"+filepath.Base(p)] = "crd/bases/" + filepath.Base(p)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	b, err := os.ReadFile(filepath.Join(root, "config", "rbac", "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	for _, r := range k.Resources {
		m["rbac/"+r] = "rbac/" + r
	}
	return m
}

// TestFilesCopyConfig: charts/keyward/files/ holds config/'s CRDs, RBAC and
// webhook configurations byte for byte, and nothing else of config/, so
// that `make manifests` and the chart cannot drift apart unseen.
func TestFilesCopyConfig(t *testing.T) {
	want := copies(t)
	files := filepath.Join(chartDir(), "files")
	for chartPath, configPath := range want {
		c, err := os.ReadFile(filepath.Join(root, "config", filepath.FromSlash(configPath)))
		if err != nil {
			t.Fatal(err)
		}
		h, err := os.ReadFile(filepath.Join(files, filepath.FromSlash(chartPath)))
		if err != nil || !bytes.Equal(c, h) {
			t.Errorf("charts/keyward/files/%s is not config/%s: cp config/%[2]s charts/keyward/files/%[1]s", chartPath, configPath)
		}
	}
	// No stale copy of a file config/ no longer has.
	for _, dir := range []string{"crds", "rbac", "webhook"} {
		entries, err := os.ReadDir(filepath.Join(files, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if _, ok := want[dir+"/"+e.Name()]; !ok {
				t.Errorf("charts/keyward/files/%s/%s is not in config/: remove it", dir, e.Name())
			}
		}
	}
}

// TestDashboardCopiesConfig: the dashboard the chart's ConfigMap embeds is
// config/grafana/keyward-dashboard.json byte for byte.
func TestDashboardCopiesConfig(t *testing.T) {
	c, err := os.ReadFile(filepath.Join(root, "config", "grafana", "keyward-dashboard.json"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Skip("config/grafana/keyward-dashboard.json does not exist yet")
	}
	if err != nil {
		t.Fatal(err)
	}
	h, err := os.ReadFile(filepath.Join(chartDir(), "files", "keyward-dashboard.json"))
	if err != nil || !bytes.Equal(c, h) {
		t.Error("charts/keyward/files/keyward-dashboard.json is not config/grafana/keyward-dashboard.json: cp config/grafana/keyward-dashboard.json charts/keyward/files/")
	}
}

// schemaNode is the part of a JSON schema this test reads.
type schemaNode struct {
	Type        any                    `json:"type"`
	Description string                 `json:"description"`
	Properties  map[string]*schemaNode `json:"properties"`
}

// TestSchemaCoversValues: every value of values.yaml has a schema with a
// description, every property of the schema has a default in values.yaml,
// and the README's values table lists every leaf. (helm lint, in
// TestLint, validates values.yaml against the schema.)
func TestSchemaCoversValues(t *testing.T) {
	var schema schemaNode
	b, err := os.ReadFile(filepath.Join(chartDir(), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if b, err = os.ReadFile(filepath.Join(chartDir(), "values.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, leaf := range coverage(t, "", values, &schema) {
		if !bytes.Contains(readme, []byte("| `"+leaf+"` |")) {
			t.Errorf("charts/keyward/README.md's values table has no row for %s", leaf)
		}
	}
}

// coverage compares values with schema below path and returns the leaves:
// the values that are not non-empty objects the schema describes property
// by property.
func coverage(t *testing.T, path string, values map[string]any, schema *schemaNode) []string {
	t.Helper()
	var leaves []string
	for k := range schema.Properties {
		if _, ok := values[k]; !ok && path+k != "global" {
			t.Errorf("values.yaml has no default for %s%s, which the schema describes", path, k)
		}
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s, ok := schema.Properties[k]
		if !ok {
			t.Errorf("values.schema.json has no property for %s%s", path, k)
			continue
		}
		if s.Description == "" {
			t.Errorf("values.schema.json: %s%s has no description", path, k)
		}
		if sub, isMap := values[k].(map[string]any); isMap && len(sub) > 0 && len(s.Properties) > 0 {
			leaves = append(leaves, coverage(t, path+k+".", sub, s)...)
			continue
		}
		leaves = append(leaves, path+k)
	}
	return leaves
}

// metricName finds the metrics an alert expression names.
var metricName = regexp.MustCompile(`\b(keyward_[a-z_]+|controller_runtime_[a-z_]+)\b`)

// TestAlertsNameExportedMetrics: every metric the PrometheusRule's alerts
// name is registered, by that name, by keyward's code (verifier/,
// controllers/) or by controller-runtime's.
func TestAlertsNameExportedMetrics(t *testing.T) {
	rules, err := os.ReadFile(filepath.Join(chartDir(), "templates", "prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/controller-runtime").Output()
	if err != nil {
		t.Fatalf("locating controller-runtime: %v", err)
	}
	keyward := []string{filepath.Join(root, "verifier"), filepath.Join(root, "controllers"),
		filepath.Join(root, "webhook"), filepath.Join(root, "internal")}
	controllerRuntime := []string{filepath.Join(strings.TrimSpace(string(out)), "pkg")}
	seen := map[string]bool{}
	for _, name := range metricName.FindAllString(string(rules), -1) {
		name = strings.TrimSuffix(name, "_bucket")
		if seen[name] {
			continue
		}
		seen[name] = true
		dirs := keyward
		if strings.HasPrefix(name, "controller_runtime_") {
			dirs = controllerRuntime
		}
		if !registered(t, dirs, name) {
			t.Errorf("the alerts name %s, which no Go source under %v registers", name, dirs)
		}
	}
	if len(seen) < 5 {
		t.Fatalf("found only %v in templates/prometheusrule.yaml", seen)
	}
}

// registered reports whether a non-test Go file under dirs holds the
// metric name as a string literal.
func registered(t *testing.T, dirs []string, name string) bool {
	t.Helper()
	lit := []byte(`"` + name + `"`)
	found := false
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || found || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			b, err := os.ReadFile(p) // #nosec G304 -- a Go source of the repository or of a module
			found = err == nil && bytes.Contains(b, lit)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}
