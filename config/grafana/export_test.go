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

package grafana

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/verifier"
)

var env *testenv.Env

// The API server calls keyward's admission webhooks
// (config/webhook/manifests.yaml) at https://localhost:<port>; the manager
// under test keeps their certificate itself, as the shipped default does.
func TestMain(m *testing.M) {
	testenv.Main(m, &env, testenv.Options{Webhooks: &envtest.WebhookInstallOptions{
		Paths:                        []string{filepath.Join("..", "webhook", "manifests.yaml")},
		LocalServingHostExternalName: "localhost",
	}})
}

// TestDashboardMetricsAreExported starts the manager (controllers,
// admission webhooks with their self-managed certificate) and a verifier
// against the local control plane, issues a key and verifies it, then
// checks that every query of the dashboard names a metric one of them
// exports, with labels it carries. The manager's metrics are gathered
// from controller-runtime's registry, which its metrics endpoint serves;
// the verifier's from the registry its /metrics serves, filled as
// verifier.Start fills its own. A family that no series shows yet (a
// counter of 410 Gone watches) is known from its collector's description.
func TestDashboardMetricsAreExported(t *testing.T) {
	env.Need(t)
	ctx := context.Background()
	ops, ns := env.Namespace(t), env.Namespace(t)
	wo := env.WebhookOptions()
	testenv.StartManager(t, env.Config, manager.Options{
		Namespace: ops, WatchNamespaces: []string{ops, ns}, MetricsAddr: "0", ProbeAddr: "0",
		Webhooks: &manager.WebhookOptions{
			Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: t.TempDir(),
			CertMode:                    manager.CertModeSelfManaged,
			ValidatingConfigurationName: "validating-webhook-configuration",
			MutatingConfigurationName:   "mutating-webhook-configuration",
			ExtraDNSNames:               []string{"localhost"},
		},
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	v := testenv.StartVerifier(t, env.Config, verifier.Options{Namespace: ops, Registry: reg, LastUsedInterval: -1})

	// Admission: each write passes once the manager has injected its CA
	// into the configuration of each webhook it goes through. The rotator
	// fills the validating configuration before the mutating one, so a
	// KeyGroup (validated only) can pass while an Application (mutated
	// too) is still refused.
	for _, o := range []client.Object{testgen.KeyGroup(ns, "things"), testgen.Application(ns, "acme", "things"), testgen.APIKey(ns, "one", "acme")} {
		testenv.Eventually(t, 60*time.Second, func() error {
			if err := env.Client.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
				return err
			}
			return nil
		})
	}
	k := &keywardv1alpha1.APIKey{}
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "one"}, k); err != nil {
			return err
		}
		if k.Status.Phase != keywardv1alpha1.APIKeyActive {
			return fmt.Errorf("APIKey %s/one: phase %q", ns, k.Status.Phase)
		}
		return nil
	})
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: k.DeliverySecretName()}, s); err != nil {
		t.Fatal(err)
	}
	key := string(s.Data[record.DeliveryAPIKey])

	// The verifier answers: allowed once it holds the key, and refused.
	verify := func(key string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+v.Addr+"/v1/verify/"+ns+"/things", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("X-Original-Method", http.MethodGet)
		req.Header.Set("X-Original-URL", "/v1/things/1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if code := verify(key); code != http.StatusOK {
			return fmt.Errorf("verify: %d", code)
		}
		return nil
	})
	if code := verify(testgen.BadChecksum(key)); code == http.StatusOK {
		t.Errorf("a key with a bad checksum was allowed")
	}

	e := exported{}
	for name, g := range map[string]prometheus.Gatherer{"the manager": metrics.Registry, "the verifier": reg} {
		if err := e.addGathered(g); err != nil {
			t.Fatalf("gathering %s's metrics: %v", name, err)
		}
	}
	for name, c := range map[string]prometheus.Collector{"the manager": metrics.Registry.(prometheus.Collector), "the verifier": reg} {
		if err := e.addDescribed(c); err != nil {
			t.Fatalf("describing %s's metrics: %v", name, err)
		}
	}
	qs, problems := queries(load(t))
	problems = append(problems, check(qs, e)...)
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d queries checked against %d metric families; known by description only: %v", len(qs), len(e), describedOnly(qs, e))
}

// describedOnly lists the metrics the queries read that no series showed.
func describedOnly(qs []query, e exported) []string {
	seen := map[string]bool{}
	for _, q := range qs {
		expr, err := parser.NewParser(parser.Options{}).ParseExpr(q.expr)
		if err != nil {
			continue
		}
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok && e[vs.Name] != nil && e[vs.Name].described {
				seen[vs.Name] = true
			}
			return nil
		})
	}
	return sorted(seen)
}
