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
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/keyward/keyward/test/e2e"
	"github.com/keyward/keyward/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// docsDir is docs/gateways of the repository.
func docsDir(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "docs", "gateways")
}

// TestGuidesNameWhatWasChecked: every manifest belongs to one guide, which
// names it and the module@version of each CRD source it was checked
// against, so that a pin moved in crdSources shows in the guide.
func TestGuidesNameWhatWasChecked(t *testing.T) {
	dir := docsDir(t)
	entries, err := os.ReadDir(filepath.Join(dir, "manifests"))
	if err != nil {
		t.Fatal(err)
	}
	owned := map[string]string{}
	for _, g := range guides {
		for _, m := range g.manifests {
			owned[m] = g.doc
		}
	}
	for _, e := range entries {
		if _, ok := owned[e.Name()]; !ok {
			t.Errorf("manifests/%s belongs to no guide in the guides table", e.Name())
		}
	}
	sources := map[string]crdSource{meshConfigSource.name: meshConfigSource}
	for _, s := range crdSources {
		sources[s.name] = s
	}
	for _, g := range guides {
		b, err := os.ReadFile(filepath.Join(dir, g.doc))
		if err != nil {
			t.Errorf("guide %s: %v", g.doc, err)
			continue
		}
		doc := string(b)
		for _, m := range g.manifests {
			if _, err := os.Stat(filepath.Join(dir, "manifests", m)); err != nil {
				t.Errorf("%s: manifest %s: %v", g.doc, m, err)
			}
			if !strings.Contains(doc, "manifests/"+m) {
				t.Errorf("%s does not name manifests/%s", g.doc, m)
			}
		}
		for _, name := range g.sources {
			s, ok := sources[name]
			if !ok {
				t.Fatalf("%s: no CRD source %q", g.doc, name)
			}
			if ref := s.module + "@" + s.version; !strings.Contains(doc, ref) {
				t.Errorf("%s does not name %s, which its manifests were checked against", g.doc, ref)
			}
		}
	}
}

// TestGuideYAMLIsFromTheManifests: every yaml block of a guide is a run of
// whole lines of one of its manifests, so that what a reader copies from
// the page is what the API server accepted.
func TestGuideYAMLIsFromTheManifests(t *testing.T) {
	dir := docsDir(t)
	for _, g := range guides {
		b, err := os.ReadFile(filepath.Join(dir, g.doc))
		if err != nil {
			t.Errorf("guide %s: %v", g.doc, err)
			continue
		}
		var manifests []string
		for _, m := range g.manifests {
			mb, err := os.ReadFile(filepath.Join(dir, "manifests", m))
			if err != nil {
				t.Fatal(err)
			}
			manifests = append(manifests, "\n"+string(mb))
		}
		for i, block := range yamlBlock.FindAllStringSubmatch(string(b), -1) {
			if !slices.ContainsFunc(manifests, func(m string) bool { return strings.Contains(m, "\n"+block[1]) }) {
				t.Errorf("%s: yaml block %d is not an excerpt of %v:\n%s", g.doc, i+1, g.manifests, block[1])
			}
		}
	}
}

var yamlBlock = regexp.MustCompile("(?ms)^```yaml\n(.*?)^```")

// TestTraefikMiddlewareIsTheTestedOne: the Middleware of traefik.yaml is
// the one of docs/traefik.md, which test/e2e runs through a real Traefik.
func TestTraefikMiddlewareIsTheTestedOne(t *testing.T) {
	tested, err := e2e.DocumentedForwardAuth()
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range readObjects(t, filepath.Join(docsDir(t), "manifests", "traefik.yaml")) {
		if obj.GetKind() != "Middleware" {
			continue
		}
		raw, err := json.Marshal(obj.Object["spec"].(map[string]any)["forwardAuth"])
		if err != nil {
			t.Fatal(err)
		}
		var fa e2e.ForwardAuth
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fa); err != nil {
			t.Fatalf("traefik.yaml: the Middleware's forwardAuth: %v", err)
		}
		if !reflect.DeepEqual(fa, tested) {
			t.Errorf("traefik.yaml's forwardAuth differs from docs/traefik.md's, the one test/e2e runs:\n got %+v\nwant %+v", fa, tested)
		}
		return
	}
	t.Fatal("traefik.yaml: no Middleware")
}

// TestManifestsAreAccepted sends every object of every manifest to the API
// server as a server-side dry run with strict field validation (an unknown
// or misspelt field is an error, not silently pruned), after installing the
// gateways' CRDs from their modules.
func TestManifestsAreAccepted(t *testing.T) {
	env.Need(t)
	installCRDs(t, env)
	// A client made after the CRDs exist, so that its REST mapper knows them.
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := docsDir(t)
	for _, g := range guides {
		for _, name := range g.manifests {
			if helmValues[name] {
				continue
			}
			t.Run(name, func(t *testing.T) {
				objs := readObjects(t, filepath.Join(dir, "manifests", name))
				for _, obj := range objs {
					dryRun(t, c, obj)
				}
			})
		}
	}
	t.Run("refusals", func(t *testing.T) { refusals(t, c, dir) })
}

// refusals shows that the dry run is not vacuous: the same objects with a
// misspelt field, or a value their CRD's rules forbid, are refused.
func refusals(t *testing.T, c client.Client, dir string) {
	cases := []struct {
		name, manifest, kind string
		mutate               func(obj map[string]any) error
	}{
		{"misspelt field", "envoy-gateway.yaml", "SecurityPolicy", func(o map[string]any) error {
			return unstructured.SetNestedField(o, "devices", "spec", "extAuth", "contextExtension")
		}},
		{"CEL rule: value and valueRef", "envoy-gateway.yaml", "SecurityPolicy", func(o map[string]any) error {
			ext, _, _ := unstructured.NestedSlice(o, "spec", "extAuth", "contextExtensions")
			ext[0].(map[string]any)["valueRef"] = map[string]any{"group": "", "kind": "ConfigMap", "name": "x", "key": "k"}
			return unstructured.SetNestedSlice(o, ext, "spec", "extAuth", "contextExtensions")
		}},
		{"enum: protocol", "contour.yaml", "ExtensionService", func(o map[string]any) error {
			return unstructured.SetNestedField(o, "grpc", "spec", "protocol")
		}},
		{"misspelt field", "traefik.yaml", "Middleware", func(o map[string]any) error {
			return unstructured.SetNestedField(o, false, "spec", "forwardAuth", "trustForwardHeaders")
		}},
		{"misspelt field", "istio.yaml", "AuthorizationPolicy", func(o map[string]any) error {
			return unstructured.SetNestedField(o, "keyward", "spec", "provider", "names")
		}},
		{"pattern: http.path", "cilium.yaml", "HTTPRoute", func(o map[string]any) error {
			rules, _, _ := unstructured.NestedSlice(o, "spec", "rules")
			filters := rules[0].(map[string]any)["filters"].([]any)
			filters[0].(map[string]any)["externalAuth"].(map[string]any)["http"].(map[string]any)["path"] = "/v1/envoy/iot/devices?x"
			return unstructured.SetNestedSlice(o, rules, "spec", "rules")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.manifest+"/"+tc.kind+"/"+tc.name, func(t *testing.T) {
			var obj *unstructured.Unstructured
			for _, o := range readObjects(t, filepath.Join(dir, "manifests", tc.manifest)) {
				if o.GetKind() == tc.kind {
					obj = o
				}
			}
			if obj == nil {
				t.Fatalf("no %s in %s", tc.kind, tc.manifest)
			}
			if err := tc.mutate(obj.Object); err != nil {
				t.Fatal(err)
			}
			err := dryRunErr(t, c, obj)
			if err == nil {
				t.Fatal("accepted; want a refusal")
			}
			t.Logf("refused as expected: %v", err)
		})
	}
}

// dryRun creates obj as a server-side dry run and reports a refusal.
func dryRun(t *testing.T, c client.Client, obj *unstructured.Unstructured) {
	t.Helper()
	id := obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()
	if reason, ok := unchecked[obj.GroupVersionKind().GroupKind()]; ok {
		t.Logf("%s: not checked: %s", id, reason)
		return
	}
	if err := dryRunErr(t, c, obj); err != nil {
		t.Errorf("%s: %v", id, err)
		return
	}
	t.Logf("%s: accepted", id)
}

// dryRunErr creates obj as a server-side dry run with strict field
// validation, in its namespace (created for real when missing: the control
// plane is the test's own), and returns the API server's refusal.
func dryRunErr(t *testing.T, c client.Client, obj *unstructured.Unstructured) error {
	t.Helper()
	gvk := obj.GroupVersionKind()
	mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("the API server does not serve %s: %w", gvk, err)
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return errors.New("a namespaced object without metadata.namespace; the guides name every namespace")
		}
		ensureNamespace(t, c, obj.GetNamespace())
	}
	return c.Create(context.Background(), obj, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
}

func ensureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
}

// readObjects decodes every YAML document of a manifest file.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := utilyaml.NewYAMLReader(bufioReader(b))
	var objs []*unstructured.Unstructured
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.UnmarshalStrict(doc, &obj.Object); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		objs = append(objs, obj)
	}
	if len(objs) == 0 {
		t.Fatalf("%s: no object", path)
	}
	return objs
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

// stripComments drops the comment lines of a YAML document, so that a
// document holding only comments counts as empty.
func stripComments(doc []byte) []byte {
	var out bytes.Buffer
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out.Write(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}
