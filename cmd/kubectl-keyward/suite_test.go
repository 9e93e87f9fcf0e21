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

package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	w := io.Discard
	if os.Getenv("KEYWARD_TEST_LOGS") != "" {
		w = os.Stderr
	}
	logf.SetLogger(zap.New(zap.WriteTo(w), zap.UseDevMode(true)))
	testenv.Main(m, &env)
}

var admin struct {
	once sync.Once
	path string
	err  error
}

// kubeconfig is a kubeconfig file for the control plane's admin, written
// once for the package.
func kubeconfig(t *testing.T) string {
	t.Helper()
	admin.once.Do(func() {
		dir, err := os.MkdirTemp("", "kubectl-keyward-test")
		if err != nil {
			admin.err = err
			return
		}
		admin.path = filepath.Join(dir, "kubeconfig")
		admin.err = env.WriteKubeconfig(admin.path)
	})
	if admin.err != nil {
		t.Fatal(admin.err)
	}
	return admin.path
}

// result is what one run of the plugin printed.
type result struct {
	out, errOut string
	err         error
}

// plugin runs "kubectl keyward args..." in this process against the test
// control plane, with stdin, at the time now gives.
type plugin struct {
	t   *testing.T
	now func() time.Time
}

func newPlugin(t *testing.T) plugin { return plugin{t: t, now: time.Now} }

func (p plugin) run(stdin string, args ...string) result {
	p.t.Helper()
	var out, errOut bytes.Buffer
	streams := genericiooptions.IOStreams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}
	cmd := newRootCommand(streams, p.now)
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig(p.t)}, args...))
	err := cmd.Execute()
	return result{out: out.String(), errOut: errOut.String(), err: err}
}

// ok runs the plugin and fails the test if it fails.
func (p plugin) ok(stdin string, args ...string) result {
	p.t.Helper()
	r := p.run(stdin, args...)
	if r.err != nil {
		p.t.Fatalf("kubectl keyward %s: %v\nstderr: %s", strings.Join(args, " "), r.err, r.errOut)
	}
	return r
}

// startManager runs keyward's controllers with hashed Secrets in ops,
// watching ns.
func startManager(t *testing.T, ops, ns string) {
	t.Helper()
	testenv.StartManager(t, env.Config, manager.Options{
		Namespace: ops, WatchNamespaces: []string{ops, ns}, MetricsAddr: "0", ProbeAddr: "0",
	})
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// issued is a key keyward minted, with its plaintext read as its
// consumer would.
type issued struct {
	key       *keywardv1alpha1.APIKey
	plaintext string
}

// issue creates the group "things", the application "acme" and the keys
// named in ns, and waits until each is Active and delivered.
func issue(t *testing.T, ns string, names ...string) []issued {
	t.Helper()
	create(t, testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things", testgen.WithExternalID("70B3D57ED0001234")))
	var out []issued
	for _, n := range names {
		create(t, testgen.APIKey(ns, n, "acme"))
	}
	for _, n := range names {
		k := waitPhase(t, ns, n, keywardv1alpha1.APIKeyActive)
		var s corev1.Secret
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: k.DeliverySecretName()}, &s); err != nil {
			t.Fatal(err)
		}
		out = append(out, issued{key: k, plaintext: string(s.Data[record.DeliveryAPIKey])})
	}
	return out
}

func getKey(t *testing.T, ns, name string) *keywardv1alpha1.APIKey {
	t.Helper()
	k := &keywardv1alpha1.APIKey{}
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
		t.Fatal(err)
	}
	return k
}

// waitPhase waits until the key reports phase with an up-to-date status.
func waitPhase(t *testing.T, ns, name string, phase keywardv1alpha1.APIKeyPhase) *keywardv1alpha1.APIKey {
	t.Helper()
	var k *keywardv1alpha1.APIKey
	testenv.Eventually(t, 30*time.Second, func() error {
		k = getKey(t, ns, name)
		if k.Status.Phase != phase || k.Status.ObservedGeneration != k.Generation {
			return fmt.Errorf("APIKey %s/%s: phase %q, want %q", ns, name, k.Status.Phase, phase)
		}
		return nil
	})
	return k
}

// hashedRecord is the hashed Secret of key i of the KeyGroup "things" of
// ns, as the manager writes it, for tests that put records in place
// without a manager.
func hashedRecord(ops, ns string, i int, k keys.Key, opts ...func(*record.Record)) *corev1.Secret {
	uid := recordUID(i)
	rec := record.Record{
		Digest: k.Digest(), KeyID: k.ID(), Namespace: ns, KeyGroup: "things", Application: fmt.Sprintf("app-%03d", i%100),
		APIKey: fmt.Sprintf("key-%05d", i), Scopes: []string{"read"}, State: record.StateActive,
	}
	for _, o := range opts {
		o(&rec)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ops, Name: record.SecretName(uid), Labels: rec.Labels(uid)},
		Type:       corev1.SecretTypeOpaque,
		Data:       rec.SecretData(),
	}
}

// recordUID is the APIKey UID that hashedRecord's record i names.
func recordUID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }
