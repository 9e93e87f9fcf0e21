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

// The chart and kustomize's config/ render the same objects for the same
// settings.

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// helmOwn are the labels and annotation Helm's conventions add to every
// object (and the chart's crds.keep to its CRDs), which config/ has no
// counterpart for.
var (
	helmLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}
	helmAnnot  = "helm.sh/resource-policy"
)

// kustomize builds a kustomization of config/ (kubectl's kustomize), or,
// with components, one written in a temporary directory over a base.
func kustomize(t *testing.T, base string, components ...string) []*unstructured.Unstructured {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "config", base)
	if len(components) > 0 {
		// kustomize takes relative paths only.
		dir = t.TempDir()
		rel := func(p string) string {
			r, err := filepath.Rel(dir, filepath.Join(root, "config", p))
			if err != nil {
				t.Fatal(err)
			}
			return filepath.ToSlash(r)
		}
		k := fmt.Sprintf("resources: [%s]\ncomponents: [", rel(base))
		for i, c := range components {
			k += map[bool]string{true: ", "}[i > 0] + rel(c)
		}
		if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k+"]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(kubectl, "kustomize", dir).Output() // #nosec G204 -- kubectl on the repository's config
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, ee.Stderr)
		}
		t.Fatal(err)
	}
	return decode(t, out)
}

// TestMatchesKustomize: helm template with the settings of a config/
// kustomization renders the same objects, field for field, as kustomize
// does, once Helm's own labels (helm.sh/chart, app.kubernetes.io/
// managed-by, instance, version) and the CRDs' helm.sh/resource-policy
// annotation (crds.keep) are removed. The release is named "keyward" in
// namespace keyward-system, so names match as rendered; a release named
// otherwise matches once its prefix is put back and the flags that tell the
// manager the prefixed names are removed. RBAC resourceNames are compared
// as rendered.
func TestMatchesKustomize(t *testing.T) {
	create := map[string]any{"create": true}
	certManager := map[string]any{"certificates": map[string]any{"mode": "cert-manager"}}
	for _, c := range []struct {
		name       string
		base       string
		components []string
		release    string
		values     map[string]any
	}{
		{name: "config/default", base: "default", release: "keyward",
			values: map[string]any{"namespace": create}},
		{name: "config/certmanager", base: "certmanager", release: "keyward",
			values: map[string]any{"namespace": create, "webhook": certManager}},
		{name: "config/default with config/networkpolicy", base: "default", components: []string{"networkpolicy"}, release: "keyward",
			values: map[string]any{"namespace": create, "networkPolicy": map[string]any{"enabled": true}}},
		{name: "config/default, release acme", base: "default", release: "acme",
			values: map[string]any{"namespace": create}},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := index(t, kustomize(t, c.base, c.components...), normaliseKustomize)
			got := index(t, render(t, c.release, "keyward-system", c.values), normaliseHelm(c.release))
			compare(t, want, got)
		})
	}
}

// index normalises objs and keys them by kind, namespace and name.
func index(t *testing.T, objs []*unstructured.Unstructured, normalise func(*unstructured.Unstructured)) map[string]map[string]any {
	t.Helper()
	m := map[string]map[string]any{}
	for _, u := range objs {
		normalise(u)
		k := u.GetAPIVersion() + " " + u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
		if _, dup := m[k]; dup {
			t.Fatalf("%s rendered twice", k)
		}
		m[k] = u.Object
	}
	return m
}

// compare reports the objects only one side renders and, for the others,
// every field path where they differ.
func compare(t *testing.T, kustomized, helmed map[string]map[string]any) {
	t.Helper()
	var keys []string
	for k := range kustomized {
		keys = append(keys, k)
	}
	for k := range helmed {
		if _, ok := kustomized[k]; !ok {
			t.Errorf("only the chart renders %s", k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		h, ok := helmed[k]
		if !ok {
			t.Errorf("only kustomize renders %s", k)
			continue
		}
		for _, d := range diff("", kustomized[k], h) {
			t.Errorf("%s: %s", k, d)
		}
	}
	t.Logf("%d objects compared", len(keys))
}

// diff lists the paths where a (kustomize's) and b (the chart's) differ.
func diff(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if aok && bok {
		var out []string
		keys := map[string]bool{}
		for k := range am {
			keys[k] = true
		}
		for k := range bm {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			out = append(out, diff(path+"."+k, am[k], bm[k])...)
		}
		return out
	}
	as, aok := a.([]any)
	bs, bok := b.([]any)
	if aok && bok && len(as) == len(bs) {
		var out []string
		for i := range as {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), as[i], bs[i])...)
		}
		return out
	}
	if reflect.DeepEqual(a, b) {
		return nil
	}
	return []string{fmt.Sprintf("%s: kustomize %v, chart %v", path, a, b)}
}

// normaliseKustomize drops a repeated container argument:
// config/certmanager appends --webhook-cert-dir, which config/manager
// already passes, with the same value.
func normaliseKustomize(u *unstructured.Unstructured) {
	eachContainer(u, func(c map[string]any) {
		args, _, _ := unstructured.NestedStringSlice(c, "args")
		var kept []string
		for _, a := range args {
			if !slices.Contains(kept, a) {
				kept = append(kept, a)
			}
		}
		if args != nil {
			_ = unstructured.SetNestedStringSlice(c, kept, "args")
		}
	})
}

// normaliseHelm removes Helm's own labels and annotation and, for a release
// not named "keyward", puts back config/'s names: "<release>-keyward-" is
// "keyward-" again in every string, and the manager's flags for the names
// are dropped.
func normaliseHelm(release string) func(*unstructured.Unstructured) {
	return func(u *unstructured.Unstructured) {
		labels := u.GetLabels()
		for _, l := range helmLabels {
			delete(labels, l)
		}
		u.SetLabels(orNil(labels))
		annotations := u.GetAnnotations()
		delete(annotations, helmAnnot)
		u.SetAnnotations(orNil(annotations))
		if release == "keyward" {
			return
		}
		u.Object = unprefix(u.Object, release+"-keyward-").(map[string]any)
		eachContainer(u, func(c map[string]any) {
			args, _, _ := unstructured.NestedStringSlice(c, "args")
			var kept []string
			for _, a := range args {
				f, _, _ := strings.Cut(a, "=")
				if _, named := managerDefaults[f]; !named && f != "--verifier-url" {
					kept = append(kept, a)
				}
			}
			_ = unstructured.SetNestedStringSlice(c, kept, "args")
		})
	}
}

// unprefix replaces prefix with "keyward-" in every string of v.
func unprefix(v any, prefix string) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = unprefix(e, prefix)
		}
	case []any:
		for i, e := range v {
			v[i] = unprefix(e, prefix)
		}
	case string:
		return strings.ReplaceAll(v, prefix, "keyward-")
	}
	return v
}

// eachContainer calls f with each container of a Deployment.
func eachContainer(u *unstructured.Unstructured, f func(map[string]any)) {
	if u.GetKind() != "Deployment" {
		return
	}
	cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
	for _, c := range cs {
		f(c.(map[string]any))
	}
	_ = unstructured.SetNestedSlice(u.Object, cs, "spec", "template", "spec", "containers")
}

// orNil is m, or nil if m is empty: metadata.labels: {} is no labels.
func orNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
