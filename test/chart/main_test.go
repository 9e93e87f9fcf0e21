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

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/keyward/keyward/test/testenv"
)

// cluster is a control plane of its own, started without keyward's CRDs
// (testenv installs them; here the chart does), so that helm install meets
// a fresh API server. Nil under -short.
var cluster struct {
	cfg    *rest.Config
	client client.Client
}

// root is the repository's root directory.
var root string

func TestMain(m *testing.M) {
	var err error
	if root, err = testenv.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if testenv.Short() {
		os.Exit(m.Run())
	}
	assets, err := testenv.AssetsDir(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	te := &envtest.Environment{BinaryAssetsDirectory: assets, Scheme: testenv.NewScheme()}
	cfg, err := te.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart: starting the control plane:", err)
		os.Exit(1)
	}
	cluster.cfg = cfg
	if cluster.client, err = client.New(cfg, client.Options{Scheme: te.Scheme}); err != nil {
		_ = te.Stop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := te.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "chart: stopping the control plane:", err)
	}
	os.Exit(code)
}

// needCluster skips under -short (make test-unit) and nowhere else.
func needCluster(t *testing.T) {
	t.Helper()
	testenv.NeedControlPlane(t)
	if cluster.client == nil {
		t.Fatal("no control plane")
	}
}

// chartDir is charts/keyward.
func chartDir() string { return filepath.Join(root, "charts", "keyward") }

var helmBinary struct {
	sync.Mutex
	path string
}

// helm returns the path of the Helm that hack/helm.sh builds from the Go
// module proxy (`make helm`; `make test` runs it first), building it if it
// is missing: once, a few minutes. Under -short, a Helm not built yet skips
// the test; otherwise, and always with KEYWARD_REQUIRE_E2E=1, a Helm that
// cannot be built fails it.
func helm(t *testing.T) string {
	t.Helper()
	helmBinary.Lock()
	defer helmBinary.Unlock()
	if helmBinary.path != "" {
		return helmBinary.path
	}
	script := filepath.Join(root, "hack", "helm.sh")
	out, err := exec.Command(script, "--print").Output() // #nosec G204 -- the repository's script
	if err != nil {
		t.Fatalf("%s --print: %v", script, err)
	}
	p := strings.TrimSpace(string(out))
	if _, err := os.Stat(p); err != nil {
		if testenv.SkipsEndToEnd() {
			t.Skipf("helm not built (%v): run 'make helm'", err)
		}
		t.Logf("building helm with %s (first time only)", script)
		if out, err := exec.Command(script).CombinedOutput(); err != nil { // #nosec G204 -- the repository's script
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	helmBinary.path = p
	return p
}

// run runs helm with args and returns its standard output.
func run(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := helmOutput(t, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// runErr runs helm with args and returns its error, with its output.
func runErr(t *testing.T, args ...string) error {
	t.Helper()
	_, err := helmOutput(t, nil, args...)
	return err
}

// helmOutput runs helm with args, and env added to its environment, and
// returns its standard output; an error holds its standard error.
func helmOutput(t *testing.T, env []string, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(helm(t), args...) // #nosec G204 -- the Helm hack/helm.sh built
	// No user configuration, cache or repositories of the machine's.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out, nil
}

// valuesFile writes values as a YAML file for -f.
func valuesFile(t *testing.T, values map[string]any) string {
	t.Helper()
	b, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir(): a subtest's name may hold a comma, and helm's -f
	// splits its argument at commas.
	dir, err := os.MkdirTemp("", "keyward-chart-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := filepath.Join(dir, "values.yaml")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// render is helm template of the chart as release in namespace, with values.
func render(t *testing.T, release, namespace string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	out := run(t, "template", release, chartDir(), "--namespace", namespace, "-f", valuesFile(t, values))
	return decode(t, out)
}

// decode splits a YAML stream into objects, leaving out empty documents.
// Integers decode as int64, as the API machinery has them.
func decode(t *testing.T, b []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatal(err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatal(err)
		}
		if string(bytes.TrimSpace(j)) == "null" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatalf("%v in\n%s", err, doc)
		}
		objs = append(objs, u)
	}
}

// dryRun sends u to the API server as a server-side apply, dry run, with
// strict field validation: an unknown or duplicate field is an error.
func dryRun(ctx context.Context, u *unstructured.Unstructured) error {
	return cluster.client.Patch(ctx, u.DeepCopy(), client.Apply, //nolint:staticcheck // SA1019: unstructured apply is what kubectl apply --server-side does
		client.FieldOwner("chart-test"), client.ForceOwnership, client.DryRunAll,
		client.FieldValidation(metav1.FieldValidationStrict))
}

// find returns the rendered object of kind and name, or nil.
func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, u := range objs {
		if u.GetKind() == kind && u.GetName() == name {
			return u
		}
	}
	return nil
}

// kinds counts the rendered objects by kind.
func kinds(objs []*unstructured.Unstructured) map[string]int {
	n := map[string]int{}
	for _, u := range objs {
		n[u.GetKind()]++
	}
	return n
}
