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

// Package dev is "keyward dev": a real local control plane (kube-apiserver
// and etcd built by hack/controlplane.sh), keyward's CRDs, the manager and
// the verifier, with the samples applied and a curl that works.
package dev

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/config"
	"github.com/keyward/keyward/internal/kube"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/verifier"
)

// ReadyLine is printed once everything answers; scripts wait for it.
const ReadyLine = "keyward dev: ready"

// Options configure a dev environment.
type Options struct {
	// Dir receives the kubeconfig and the control plane's data.
	Dir string
	// VerifierListen is the verifier's address.
	VerifierListen string
	// VerifierGRPCListen is the address of the verifier's gRPC ext_authz
	// Check; empty: not served.
	VerifierGRPCListen string
	// Samples applies config/samples to namespace default.
	Samples bool
	// Assets holds kube-apiserver and etcd; empty: KUBEBUILDER_ASSETS, then
	// what hack/controlplane.sh builds.
	Assets string
	// Out receives the human-readable progress and the ready line.
	Out io.Writer
	// Verbose sends the components' logs to Out as well.
	Verbose bool
}

// Env is a running dev environment, for tests.
type Env struct {
	Config     *rest.Config
	Kubeconfig string
	Verifier   string // http://host:port
	// VerifierGRPC is the address of the verifier's Envoy ext_authz
	// Check, empty when not served.
	VerifierGRPC string
	// DemoKey is the plaintext of the sample key the printed curl uses.
	DemoKey string
}

// Run starts everything, prints the ready line, and stops everything when
// ctx ends. started, when not nil, receives the environment once ready.
func Run(ctx context.Context, o Options, started func(*Env)) error {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	logs := io.Discard
	if o.Verbose {
		logs = out
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs)))

	te, err := startControlPlane(o, out)
	if err != nil {
		return err
	}
	defer report(out, te.Stop)
	cfg := te.Config
	kubeconfig, c, err := prepareCluster(ctx, te, o.Dir)
	if err != nil {
		return err
	}
	kcm, err := startControllerManager(te, o, out)
	if err != nil {
		return err
	}
	defer report(out, kcm.Stop)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	probeAddr, mgrDone, err := startManager(runCtx, c, cfg, o)
	if err != nil {
		return err
	}
	defer func() {
		cancel()
		if err := <-mgrDone; err != nil {
			fmt.Fprintln(out, "keyward dev: manager:", err)
		}
	}()
	v, err := verifier.Start(runCtx, cfg, verifier.Options{
		Namespace: kube.DefaultNamespace, Listen: o.VerifierListen, ProbeAddr: "127.0.0.1:0", GRPCListen: o.VerifierGRPCListen,
		Log: ctrl.Log.WithName("verifier"),
	})
	if err != nil {
		return err
	}
	defer func() {
		cancel()
		_ = v.Wait()
	}()
	if err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return v.Ready() && ready("http://"+probeAddr+"/readyz"), nil
	}); err != nil {
		return errors.New("the verifier or the manager's webhooks did not become ready within a minute")
	}

	env := &Env{Config: cfg, Kubeconfig: kubeconfig, Verifier: "http://" + v.Addr, VerifierGRPC: v.GRPCAddr}
	if o.Samples {
		if env.DemoKey, err = applySamples(ctx, c); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "keyward dev: kubeconfig written to %s\n", kubeconfig)
	fmt.Fprintln(out, ReadyLine)
	if o.Samples {
		printCurls(out, env)
	}
	fmt.Fprintf(out, "\nThe verifier's metrics are at http://%s/metrics (docs/metrics.md).\n", v.ProbeAddr)
	fmt.Fprintf(out, "\n  export KUBECONFIG=%s\n  kubectl get keyward -A\n\nPress Ctrl-C to stop everything.\n", kubeconfig)
	if started != nil {
		started(env)
	}
	<-ctx.Done()
	fmt.Fprintln(out, "keyward dev: stopping")
	return nil
}

// startControlPlane checks what would fail late, in one line, then starts
// kube-apiserver and etcd with the CRDs installed.
func startControlPlane(o Options, out io.Writer) (*envtest.Environment, error) {
	for _, addr := range []string{o.VerifierListen, o.VerifierGRPCListen} {
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("the verifier's address %s is not free: %w", addr, err)
		}
		_ = ln.Close()
	}
	assets, err := assetsDir(o.Assets)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o750); err != nil {
		return nil, err
	}
	crdDir, err := extract(config.CRDs, "crd/bases", filepath.Join(o.Dir, "crds"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "keyward dev: starting kube-apiserver and etcd from", assets)
	te := &envtest.Environment{
		Scheme:                kube.NewScheme(),
		CRDDirectoryPaths:     []string{crdDir},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", firstLine(err))
	}
	cfg.QPS, cfg.Burst = 100, 200
	return te, nil
}

// report runs stop, on the way out, and prints its error, if any.
func report(out io.Writer, stop func() error) {
	if err := stop(); err != nil {
		fmt.Fprintln(out, "keyward dev: stopping:", err)
	}
}

// startControllerManager runs kube-controller-manager's garbage
// collector, namespace and ClusterRole-aggregation controllers, logging to
// <dir>/kube-controller-manager.log: so that deleting an APIKey collects its
// delivery Secret and namespaces finish deleting, as in a cluster.
func startControllerManager(te *envtest.Environment, o Options, out io.Writer) (*kube.ControllerManager, error) {
	assets, err := assetsDir(o.Assets)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(o.Dir, "kube-controller-manager.log")
	logf, err := os.Create(logPath) //nolint:gosec // G304: the user's own dev directory
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "keyward dev: starting kube-controller-manager (garbage collector, namespaces, ClusterRole aggregation); log:", logPath)
	m, err := kube.StartControllerManager(te.Config, assets, o.Dir, logf)
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	return m, nil
}

// prepareCluster writes the admin kubeconfig and creates the operator's
// namespace.
func prepareCluster(ctx context.Context, te *envtest.Environment, dir string) (string, client.Client, error) {
	kubeconfig, err := filepath.Abs(filepath.Join(dir, "kubeconfig"))
	if err != nil {
		return "", nil, err
	}
	if err := kube.WriteKubeconfig(te.Config, kubeconfig); err != nil {
		return "", nil, err
	}
	c, err := client.New(te.Config, client.Options{Scheme: te.Scheme})
	if err != nil {
		return "", nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kube.DefaultNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", nil, err
	}
	if err := installUserRoles(ctx, c); err != nil {
		return "", nil, err
	}
	return kubeconfig, c, nil
}

// installUserRoles creates the roles shipped for users (config/rbac), as
// an install does: a user bound to the built-in edit role may then manage
// APIKeys, through kube-controller-manager's ClusterRole aggregation.
func installUserRoles(ctx context.Context, c client.Client) error {
	entries, err := fs.ReadDir(config.UserRoles, "rbac")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := config.UserRoles.ReadFile("rbac/" + e.Name())
		if err != nil {
			return err
		}
		objs, err := kube.DecodeYAML(b)
		if err != nil {
			return fmt.Errorf("config/rbac/%s: %w", e.Name(), err)
		}
		for _, u := range objs {
			if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("installing %s %s: %w", u.GetKind(), u.GetName(), err)
			}
		}
	}
	return nil
}

// startManager installs the webhook configurations and starts the manager,
// webhooks included. It returns the manager's probe address and a channel
// that receives its result when ctx ends.
func startManager(ctx context.Context, c client.Client, cfg *rest.Config, o Options) (string, <-chan error, error) {
	webhookPort, probeAddr, err := freePorts()
	if err != nil {
		return "", nil, err
	}
	if err := installWebhooks(ctx, c, webhookPort); err != nil {
		return "", nil, err
	}
	mgr, err := manager.New(ctx, cfg, manager.Options{
		Namespace: kube.DefaultNamespace, MetricsAddr: "0", ProbeAddr: probeAddr,
		VerifierURL: "http://" + o.VerifierListen,
		Webhooks: &manager.WebhookOptions{
			Host: "127.0.0.1", Port: webhookPort, CertDir: filepath.Join(o.Dir, "webhook-certs"),
			CertMode: manager.CertModeSelfManaged, ExtraDNSNames: []string{"localhost"},
		},
	})
	if err != nil {
		return "", nil, fmt.Errorf("building the manager: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return probeAddr, done, nil
}

// freePorts picks a port for the webhook server and an address for the
// manager's probes.
func freePorts() (int, string, error) {
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, "", err
		}
		addrs = append(addrs, ln.Addr().String())
		defer func() { _ = ln.Close() }()
	}
	_, port, _ := net.SplitHostPort(addrs[0])
	p, err := strconv.Atoi(port)
	return p, addrs[1], err
}

// installWebhooks creates the generated webhook configurations, calling the
// manager on localhost instead of through a Service. The manager injects its
// self-managed CA into them.
func installWebhooks(ctx context.Context, c client.Client, port int) error {
	objs, err := kube.LocalWebhookConfigurations(config.Webhooks, port)
	if err != nil {
		return err
	}
	for _, u := range objs {
		if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("installing %s: %w", u.GetName(), err)
		}
	}
	return nil
}

func ready(url string) bool {
	resp, err := http.Get(url) //nolint:gosec // G107: a URL on this machine, built here
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Demo objects the printed curl uses: a sample key and its group.
const (
	demoKey   = "acme-dashboard-downlinks"
	demoGroup = "devices"
)

func printCurls(out io.Writer, env *Env) {
	url := env.Verifier + "/v1/verify/default/" + demoGroup
	fmt.Fprintf(out, `
A key was issued to Secret default/%s-key. Ask the verifier as ingress-nginx would:

  # allowed (200): the key's scope device-downlinks covers POST /integration/device/sendmsg
  curl -i %s \
    -H 'Authorization: Bearer %s' \
    -H 'X-Original-Method: POST' -H 'X-Original-URL: https://api.example.com/integration/device/sendmsg'

  # refused (403 scope): no scope of the key covers DELETE /integration/device/onboard/x
  curl -i %s \
    -H 'Authorization: Bearer %s' \
    -H 'X-Original-Method: DELETE' -H 'X-Original-URL: https://api.example.com/integration/device/onboard/x'
`, demoKey, url, env.DemoKey, url, env.DemoKey)
	if env.VerifierGRPC != "" {
		fmt.Fprintf(out, `
Envoy's ext_authz (gRPC) is served at %s: a route's context extensions
%s=default and %s=%s name the group (docs/envoy.md).
`, env.VerifierGRPC, verifier.ExtensionNamespace, verifier.ExtensionKeyGroup, demoGroup)
	}
}

// applySamples creates every sample in namespace default and returns the
// plaintext of the demo key once it is issued.
func applySamples(ctx context.Context, c client.Client) (string, error) {
	if err := createSamples(ctx, c); err != nil {
		return "", err
	}
	return waitForDemoKey(ctx, c)
}

// createSamples creates the samples parents first: admission refuses a key
// whose application does not exist yet.
func createSamples(ctx context.Context, c client.Client) error {
	entries, err := fs.ReadDir(config.Samples, "samples")
	if err != nil {
		return err
	}
	order := map[string]int{"keygroup": 0, "application": 1, "apikey": 2}
	sort.SliceStable(entries, func(i, j int) bool {
		kind := func(name string) int { return order[strings.SplitN(name, "_", 2)[0]] }
		return kind(entries[i].Name()) < kind(entries[j].Name())
	})
	for _, e := range entries {
		if e.Name() == "kustomization.yaml" {
			continue
		}
		b, err := config.Samples.ReadFile("samples/" + e.Name())
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return fmt.Errorf("samples/%s: %w", e.Name(), err)
			}
			if len(u.Object) == 0 {
				continue
			}
			u.SetNamespace("default")
			if err := c.Create(ctx, u); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("applying samples/%s %s %s: %w", e.Name(), u.GetKind(), u.GetName(), err)
			}
		}
	}
	return nil
}

func waitForDemoKey(ctx context.Context, c client.Client) (string, error) {
	k := &keywardv1alpha1.APIKey{}
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: demoKey}, k); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return meta.IsStatusConditionTrue(k.Status.Conditions, keywardv1alpha1.ConditionReady), nil
	})
	if err != nil {
		return "", fmt.Errorf("the sample key %s did not become Ready: %+v", demoKey, k.Status)
	}
	s := &corev1.Secret{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "default", Name: k.DeliverySecretName()}, s); err != nil {
		return "", err
	}
	return string(s.Data[record.DeliveryAPIKey]), nil
}

// assetsDir finds kube-apiserver, kube-controller-manager and etcd.
func assetsDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if dir == "" {
		out, err := exec.Command("hack/controlplane.sh", "--print-dir").Output()
		if err != nil {
			return "", errors.New("cannot find the control plane binaries: run 'make dev' from the repository, or set KUBEBUILDER_ASSETS")
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, bin := range []string{"kube-apiserver", "kube-controller-manager", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil { //nolint:gosec // G703: the user names where their own binaries are
			return "", fmt.Errorf("%s is missing from %s: run 'make controlplane' (make dev does it)", bin, dir)
		}
	}
	return dir, nil
}

// extract writes the embedded files under root to dir.
func extract(fsys fs.FS, root, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	entries, err := fs.ReadDir(fsys, root)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		b, err := fs.ReadFile(fsys, root+"/"+e.Name())
		if err != nil {
			return "", err
		}
		// Names come from the binary's own embedded files.
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// firstLine keeps an error to its first line: envtest's errors can carry a
// whole process log.
func firstLine(err error) error {
	s := bufio.NewScanner(strings.NewReader(err.Error()))
	if s.Scan() {
		return errors.New(s.Text())
	}
	return err
}
