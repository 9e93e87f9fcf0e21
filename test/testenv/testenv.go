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

// Package testenv starts the real local control plane (kube-apiserver,
// kube-controller-manager and etcd built by hack/controlplane.sh) for
// integration tests: one control plane per test package, a fresh namespace
// per test.
//
// A test package uses it from TestMain:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { testenv.Main(m, &env) }
//
// and each test asks for its own namespace with env.Namespace(t).
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/keyward/keyward/internal/kube"
)

// Env is a running control plane with keyward's CRDs installed.
type Env struct {
	// Config reaches the API server as a cluster admin.
	Config *rest.Config
	// Client is a direct (uncached) client with keyward's types registered.
	Client client.Client
	// Scheme holds the built-in and keyward's types.
	Scheme *runtime.Scheme
	// Root is the repository's top directory.
	Root string

	env *envtest.Environment
	kcm *kube.ControllerManager
	dir string
}

// Options change how the control plane starts.
type Options struct {
	// Webhooks, when set, are registered in the API server; envtest serves
	// them over TLS on LocalServingHost/Port with its own CA.
	Webhooks *envtest.WebhookInstallOptions
	// APIServerFlags are set on kube-apiserver's command line, such as
	// etcd-compaction-interval.
	APIServerFlags map[string]string
	// EtcdFlags are set on etcd's command line, such as
	// quota-backend-bytes.
	EtcdFlags map[string]string
	// NoControllerManager starts no kube-controller-manager (benchmarks
	// that measure the API server and etcd alone).
	NoControllerManager bool
	// CRDDirectoryPaths, when set, hold the CRDs installed instead of the
	// current ones (config/crd/bases), such as a previous release's for an
	// upgrade test.
	CRDDirectoryPaths []string
}

// NewScheme returns a scheme with the built-in types and keyward's.
func NewScheme() *runtime.Scheme { return kube.NewScheme() }

// RepoRoot finds the repository's top directory from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.HasPrefix(string(b), "module github.com/keyward/keyward\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: not inside the keyward repository")
		}
		dir = parent
	}
}

// AssetsDir returns the directory holding kube-apiserver and etcd:
// KUBEBUILDER_ASSETS when set, else what hack/controlplane.sh builds.
func AssetsDir(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	out, err := exec.Command(filepath.Join(root, "hack", "controlplane.sh"), "--print-dir").Output()
	if err != nil {
		return "", fmt.Errorf("testenv: locating the control plane: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	for _, bin := range []string{"kube-apiserver", "kube-controller-manager", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			return "", fmt.Errorf("testenv: %s not built: run 'make controlplane' (or 'make test', which builds it)", bin)
		}
	}
	return dir, nil
}

// Start starts a control plane and installs keyward's CRDs.
func Start(opts Options) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := AssetsDir(root)
	if err != nil {
		return nil, err
	}
	scheme := NewScheme()
	crdPaths := []string{filepath.Join(root, "config", "crd", "bases")}
	if len(opts.CRDDirectoryPaths) > 0 {
		crdPaths = opts.CRDDirectoryPaths
	}
	te := &envtest.Environment{
		Scheme:                scheme,
		CRDDirectoryPaths:     crdPaths,
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	if opts.Webhooks != nil {
		te.WebhookInstallOptions = *opts.Webhooks
	}
	for k, v := range opts.APIServerFlags {
		te.ControlPlane.GetAPIServer().Configure().Set(k, v)
	}
	if len(opts.EtcdFlags) > 0 {
		if te.ControlPlane.Etcd == nil {
			te.ControlPlane.Etcd = &envtest.Etcd{}
		}
		for k, v := range opts.EtcdFlags {
			te.ControlPlane.Etcd.Configure().Set(k, v)
		}
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("testenv: starting the control plane from %s: %w", assets, err)
	}
	// Tests create objects in bursts; the defaults (5 QPS) would make them
	// measure the client's rate limiter instead of keyward.
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = te.Stop()
		return nil, err
	}
	e := &Env{Config: cfg, Client: c, Scheme: scheme, Root: root, env: te}
	if !opts.NoControllerManager {
		if err := e.startControllerManager(assets); err != nil {
			_ = te.Stop()
			return nil, err
		}
	}
	return e, nil
}

// startControllerManager runs kube-controller-manager's garbage collector,
// namespace and ClusterRole-aggregation controllers, as a cluster does. Its
// log goes to stderr with KEYWARD_TEST_LOGS set.
func (e *Env) startControllerManager(assets string) error {
	dir, err := os.MkdirTemp("", "keyward-kcm-")
	if err != nil {
		return err
	}
	logw := io.Discard
	if os.Getenv("KEYWARD_TEST_LOGS") != "" {
		logw = os.Stderr
	}
	m, err := kube.StartControllerManager(e.Config, assets, dir, logw)
	if err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("testenv: %w", err)
	}
	e.kcm, e.dir = m, dir
	return nil
}

// Stop stops the control plane.
func (e *Env) Stop() error {
	err := e.kcm.Stop()
	if e.dir != "" {
		_ = os.RemoveAll(e.dir)
	}
	return errors.Join(err, e.env.Stop())
}

// WebhookOptions returns the webhook install options the control plane
// was started with (serving host, port and certificate directory).
func (e *Env) WebhookOptions() *envtest.WebhookInstallOptions {
	return &e.env.WebhookInstallOptions
}

// WriteKubeconfig writes a kubeconfig for the control plane's admin, for
// kubectl and other programs a test starts.
func (e *Env) WriteKubeconfig(path string) error {
	return WriteKubeconfig(e.Config, path)
}

// WriteKubeconfig writes a kubeconfig that reaches the API server as cfg does.
func WriteKubeconfig(cfg *rest.Config, path string) error { return kube.WriteKubeconfig(cfg, path) }

// Short reports whether the tests run with -short (make test-unit): then no
// control plane is started, *env stays nil, and every test that needs it
// is skipped by Env.Namespace or Env.Need. It parses the test flags, so
// that a TestMain may ask before m.Run.
func Short() bool {
	if !flag.Parsed() {
		flag.Parse()
	}
	return SkipsEndToEnd()
}

// SkipsEndToEnd reports whether tests that need the control plane, nginx or
// built tools skip: under -short (make test-unit), unless
// KEYWARD_REQUIRE_E2E=1 (CI sets it) requires them to run.
func SkipsEndToEnd() bool {
	return testing.Short() && os.Getenv("KEYWARD_REQUIRE_E2E") != "1"
}

// Need skips t when no control plane runs (-short): the test needs one.
// A nil *Env is the answer to -short; Need reports it.
func (e *Env) Need(t testing.TB) {
	t.Helper()
	if e == nil {
		NeedControlPlane(t)
	}
}

// NeedControlPlane skips t under -short, for a test that starts a control
// plane of its own (keyward dev, say).
func NeedControlPlane(t testing.TB) {
	t.Helper()
	if SkipsEndToEnd() {
		t.Skip("needs the local control plane; runs in make test, not make test-unit (-short)")
	}
}

// Main runs a test package against one control plane, stored in *env;
// with -short it starts none and leaves *env nil.
func Main(m *testing.M, env **Env, opts ...Options) {
	if Short() {
		os.Exit(m.Run())
	}
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	e, err := Start(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stopping the control plane:", err)
	}
	os.Exit(code)
}

// Namespace creates a namespace of its own for the test. Namespaces are
// never reused: the control plane has no namespace controller, so a deleted
// one would stay Terminating.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	e.Need(t)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := sanitize(t.Name())
	if len(name) > 50 {
		name = name[:50]
	}
	name = strings.Trim(name, "-") + "-" + hex.EncodeToString(b)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return b.String()
}
