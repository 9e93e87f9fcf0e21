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

package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

// The tests run against a real kube-apiserver with keyward's webhook
// configurations (config/webhook/manifests.yaml) installed by envtest,
// which points them at a URL on this machine and serves them over TLS with
// its own CA. One manager, started here, answers them and runs the
// controllers for every namespace, with a clock the tests move.
var (
	env   *testenv.Env
	clock *clocktesting.FakeClock
)

// operatorNamespace is the shared manager's namespace.
const operatorNamespace = "keyward-webhook-tests"

func TestMain(m *testing.M) {
	// The manager's logs go to stderr with KEYWARD_TEST_LOGS=1.
	w := io.Discard
	if os.Getenv("KEYWARD_TEST_LOGS") != "" {
		w = os.Stderr
	}
	logf.SetLogger(zap.New(zap.WriteTo(w), zap.UseDevMode(true)))
	if testenv.Short() {
		os.Exit(m.Run())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	e, err := testenv.Start(testenv.Options{Webhooks: &envtest.WebhookInstallOptions{
		Paths: []string{filepath.Join("..", "config", "webhook", "manifests.yaml")},
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env = e
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	stop, err := startSharedManager()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	return m.Run()
}

// startSharedManager runs the manager on envtest's webhook address, with
// envtest's certificate (--webhook-cert-mode=external), and waits until
// the webhooks answer.
func startSharedManager() (func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}
	if err := env.Client.Create(ctx, ns); err != nil {
		cancel()
		return nil, err
	}
	clock = clocktesting.NewFakeClock(time.Now())
	wo := env.WebhookOptions()
	mgr, err := manager.New(ctx, env.Config, manager.Options{
		Namespace:   operatorNamespace,
		MetricsAddr: "0",
		ProbeAddr:   "0",
		Clock:       clock,
		Webhooks: &manager.WebhookOptions{
			Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: wo.LocalServingCertDir,
			CertMode: manager.CertModeExternal,
		},
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("building the manager: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}
	probe := testgen.KeyGroup("default", "probe")
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := env.Client.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if err == nil {
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("the webhooks do not answer: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// update applies change to the latest version of obj with c, retrying
// conflicts only.
func update[T client.Object](ctx context.Context, c client.Client, obj T, change func(T), opts ...client.UpdateOption) error {
	for {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		err := c.Update(ctx, obj, opts...)
		if !apierrors.IsConflict(err) {
			return err
		}
	}
}

func mustUpdate[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	if err := update(context.Background(), env.Client, obj, change); err != nil {
		t.Fatalf("updating %T %s: %v", obj, obj.GetName(), err)
	}
}

func waitKeyPhase(t *testing.T, ns, name string, phase keywardv1alpha1.APIKeyPhase) *keywardv1alpha1.APIKey {
	t.Helper()
	k := &keywardv1alpha1.APIKey{}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
			return err
		}
		if k.Status.Phase != phase || k.Status.ObservedGeneration != k.Generation {
			return fmt.Errorf("APIKey %s/%s: phase %q, want %q (%+v)", ns, name, k.Status.Phase, phase,
				meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionReady))
		}
		return nil
	})
	return k
}

func waitAppActive(t *testing.T, ns, name string) {
	const phase = keywardv1alpha1.ApplicationActive
	t.Helper()
	a := &keywardv1alpha1.Application{}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, a); err != nil {
			return err
		}
		if a.Status.Phase != phase {
			return fmt.Errorf("Application %s/%s: phase %q, want %q", ns, name, a.Status.Phase, phase)
		}
		return nil
	})
}

// rejected checks that err is the API server refusing a request with a
// cause at field whose message contains each of want, and returns the
// message.
func rejected(t *testing.T, err error, field string, want ...string) string {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want a rejection at %s", field)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		t.Fatalf("not an API error: %v", err)
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("message does not contain %q: %s", w, msg)
		}
	}
	if !strings.Contains(msg, field+":") {
		t.Errorf("message does not name %s: %s", field, msg)
	}
	var fields []string
	if d := status.Status().Details; d != nil {
		for _, c := range d.Causes {
			fields = append(fields, c.Field)
		}
	}
	found := false
	for _, f := range fields {
		found = found || f == field
	}
	if !found {
		t.Errorf("no cause at %s (causes at %q): %s", field, fields, msg)
	}
	return msg
}

// as returns a client that acts as user, through impersonation (envtest's
// admin may impersonate anyone, UIDs included).
func as(t *testing.T, user string, uid string, groups ...string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, UID: uid, Groups: append(groups, "system:authenticated")}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var installRoles sync.Once

// shippedRoles installs config/rbac's ClusterRoles for users. The local
// control plane runs no ClusterRole aggregation, so tests bind them
// directly.
func shippedRoles(t *testing.T) {
	t.Helper()
	var err error
	installRoles.Do(func() {
		for _, name := range []string{"keyward_admin_role.yaml", "keyward_editor_role.yaml", "keyward_viewer_role.yaml"} {
			var b []byte
			if b, err = os.ReadFile(filepath.Join("..", "config", "rbac", name)); err != nil {
				return
			}
			r := &rbacv1.ClusterRole{}
			if err = yaml.UnmarshalStrict(b, r); err != nil {
				return
			}
			if err = env.Client.Create(context.Background(), r); err != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatalf("installing the shipped ClusterRoles: %v", err)
	}
}

// bind binds a ClusterRole to a user in ns.
func bind(t *testing.T, ns, clusterRole string, subject rbacv1.Subject) {
	t.Helper()
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: clusterRole + "-" + strings.ReplaceAll(subject.Name, ":", "-")},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{subject},
	})
}

// aliceSubject is the user the RBAC tests act as.
var aliceSubject = rbacv1.Subject{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "alice"}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
