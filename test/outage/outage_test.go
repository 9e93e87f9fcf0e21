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

// Package outage tests that an incident can be stopped while keyward's
// webhook endpoint is unreachable: a key can be disabled and revoked, and
// the verifier refuses it within a second, while every other change to a
// key is still refused (failurePolicy: Fail).
package outage

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/verifier"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	w := io.Discard
	if os.Getenv("KEYWARD_TEST_LOGS") != "" {
		w = os.Stderr
	}
	logf.SetLogger(zap.New(zap.WriteTo(w), zap.UseDevMode(true)))
	testenv.Main(m, &env, testenv.Options{Webhooks: &envtest.WebhookInstallOptions{
		Paths: []string{filepath.Join("..", "..", "config", "webhook", "manifests.yaml")},
	}})
}

// startManager runs keyward's manager, with its webhooks on envtest's
// webhook address or without them, until the returned stop is called.
func startManager(t *testing.T, ops string, webhooks bool) (stop func()) {
	t.Helper()
	o := manager.Options{Namespace: ops, MetricsAddr: "0", ProbeAddr: "0"}
	if webhooks {
		wo := env.WebhookOptions()
		o.Webhooks = &manager.WebhookOptions{
			Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: wo.LocalServingCertDir, CertMode: manager.CertModeExternal,
		}
	}
	return testenv.StartManager(t, env.Config, o)
}

// verify asks the verifier about a GET of /v1/things/1 with key, as
// ingress-nginx would, and returns the status and reason.
func verify(t *testing.T, base, ns, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/verify/"+ns+"/things", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Original-URL", "https://api.example.com/v1/things/1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Auth-Reason")
}

// refusedWithin polls the verifier until it refuses key for reason, and
// returns how long that took from start, failing after 10 s.
func refusedWithin(t *testing.T, base, ns, key, reason string, start time.Time) time.Duration {
	t.Helper()
	for {
		if code, got := verify(t, base, ns, key); code == http.StatusUnauthorized && got == reason {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the verifier did not refuse the key as %s within 10s", reason)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// issue creates, through the webhooks, a group, an application and keys of
// these names, and returns their plaintexts once the verifier at base
// accepts each.
func issue(t *testing.T, base, ns string, names ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, 30*time.Second, func() error { return env.Client.Create(ctx, testgen.KeyGroup(ns, "things")) })
	if err := env.Client.Create(ctx, testgen.Application(ns, "acme", "things")); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := env.Client.Create(ctx, testgen.APIKey(ns, n, "acme")); err != nil {
			t.Fatal(err)
		}
	}
	plaintext := map[string]string{}
	for _, n := range names {
		testenv.Eventually(t, 30*time.Second, func() error {
			k := &keywardv1alpha1.APIKey{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: n}, k); err != nil {
				return err
			}
			s := &corev1.Secret{}
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: k.DeliverySecretName()}, s); err != nil {
				return err
			}
			plaintext[n] = string(s.Data[record.DeliveryAPIKey])
			if code, _ := verify(t, base, ns, plaintext[n]); code != http.StatusOK {
				return fmt.Errorf("APIKey %s answers %d", n, code)
			}
			return nil
		})
	}
	return plaintext
}

// patchKey merge-patches the APIKey name with change.
func patchKey(ctx context.Context, ns, name string, change func(*keywardv1alpha1.APIKey)) error {
	k := &keywardv1alpha1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
		return err
	}
	patch := client.MergeFrom(k.DeepCopy())
	change(k)
	return env.Client.Patch(ctx, k, patch)
}

// TestSwitchOffWhileWebhookDown: with the webhook endpoint unreachable and
// the controllers running, a key is disabled and revoked and the verifier
// refuses it within a second; any other change, a switch-off combined with
// another change included, is still refused.
func TestSwitchOffWhileWebhookDown(t *testing.T) {
	env.Need(t)
	ctx := context.Background()
	ops, ns := env.Namespace(t), env.Namespace(t)
	stopWebhooks := startManager(t, ops, true)
	base := "http://" + testenv.StartVerifier(t, env.Config, verifier.Options{Namespace: ops}).Addr

	// With the webhooks up: a group, an application, three working keys.
	names := []string{"incident", "combined", "other", "applied", "server-side"}
	plaintext := issue(t, base, ns, names...)

	// The webhook endpoint goes away; the controllers go on.
	stopWebhooks()
	startManager(t, ops, false)
	unreachable := func(t *testing.T, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "failed calling webhook") {
			t.Errorf("want the change refused for the unreachable webhook, got %v", err)
		}
	}

	t.Run("disable, then revoke", func(t *testing.T) {
		start := time.Now()
		if err := patchKey(ctx, ns, "incident", func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = true }); err != nil {
			t.Fatalf("disabling the key with the webhook down: %v", err)
		}
		if d := refusedWithin(t, base, ns, plaintext["incident"], "disabled", start); d > time.Second {
			t.Errorf("disabled key refused after %v, want within 1s", d)
		} else {
			t.Logf("disabled key refused %v after the patch was sent", d)
		}
		start = time.Now()
		if err := patchKey(ctx, ns, "incident", func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true }); err != nil {
			t.Fatalf("revoking the key with the webhook down: %v", err)
		}
		if d := refusedWithin(t, base, ns, plaintext["incident"], "revoked", start); d > time.Second {
			t.Errorf("revoked key refused after %v, want within 1s", d)
		} else {
			t.Logf("revoked key refused %v after the patch was sent", d)
		}
		// Switching it back on is not a switch-off.
		unreachable(t, patchKey(ctx, ns, "incident", func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = false }))
	})

	t.Run("kubectl apply of a switch-off, client-side and server-side", func(t *testing.T) {
		// GitOps commits the switch-off and applies the manifest: kubectl
		// apply rewrites its last-applied-configuration annotation with
		// it, which the switch-off may carry.
		kubectl, err := exec.LookPath("kubectl")
		if err != nil {
			t.Fatal(err)
		}
		kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
		if err := testenv.WriteKubeconfig(env.Config, kubeconfig); err != nil {
			t.Fatal(err)
		}
		apply := func(name, field string, args ...string) {
			t.Helper()
			manifest := fmt.Sprintf("apiVersion: keyward.dev/v1alpha1\nkind: APIKey\nmetadata: {name: %s, namespace: %s}\nspec: {application: acme, scopes: [read], %s: true}\n", name, ns, field)
			cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig, "apply", "-f", "-"}, args...)...) // #nosec G204 -- the test's own arguments
			cmd.Stdin = strings.NewReader(manifest)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kubectl apply %v of %s: true with the webhook down: %v\n%s", args, field, err, out)
			}
		}
		start := time.Now()
		apply("applied", "disabled")
		refusedWithin(t, base, ns, plaintext["applied"], "disabled", start)
		start = time.Now()
		apply("server-side", "revoked", "--server-side", "--force-conflicts")
		refusedWithin(t, base, ns, plaintext["server-side"], "revoked", start)
		// The annotation alone, or with any other change, is no switch-off.
		unreachable(t, patchKey(ctx, ns, "combined", func(k *keywardv1alpha1.APIKey) {
			k.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
		}))
	})

	t.Run("anything else is refused", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			change func(*keywardv1alpha1.APIKey)
		}{
			{"scope change", func(k *keywardv1alpha1.APIKey) { k.Spec.Scopes = append(k.Spec.Scopes, "write") }},
			{"annotation change", func(k *keywardv1alpha1.APIKey) { k.Annotations[keywardv1alpha1.AnnotationCreatedBy] = "mallory" }},
			{"annotation added", func(k *keywardv1alpha1.APIKey) { k.Annotations["example.com/note"] = "x" }},
			{"label added with a revoke", func(k *keywardv1alpha1.APIKey) {
				k.Spec.Revoked = true
				k.Labels = map[string]string{"team": "x"}
			}},
			{"revoke with a description", func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true; k.Spec.Description = "leaked" }},
			{"disable with a later expiry", func(k *keywardv1alpha1.APIKey) {
				k.Spec.Disabled = true
				at := metav1.NewTime(time.Now().Add(24 * time.Hour))
				k.Spec.ExpiresAt = &at
			}},
			{"revoke with new source ranges", func(k *keywardv1alpha1.APIKey) {
				k.Spec.Revoked = true
				k.Spec.AllowedSourceRanges = []keywardv1alpha1.CIDR{"0.0.0.0/0"}
			}},
			{"finalizer removed with a revoke", func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true; k.Finalizers = nil }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				unreachable(t, patchKey(ctx, ns, "combined", tt.change))
			})
		}
		if code, _ := verify(t, base, ns, plaintext["combined"]); code != http.StatusOK {
			t.Errorf("a refused change switched the key off (%d)", code)
		}
		if code, _ := verify(t, base, ns, plaintext["other"]); code != http.StatusOK {
			t.Errorf("another key stopped working (%d)", code)
		}
	})
}

// TestBreakGlassWhileManagerDown: with the whole manager down, an
// administrator marks a key's hashed record revoked; the verifier refuses
// the key within a second, and the manager, once back, keeps it revoked
// (it never reverts a terminal state) and reports it in the APIKey.
func TestBreakGlassWhileManagerDown(t *testing.T) {
	env.Need(t)
	ctx := context.Background()
	ops, ns := env.Namespace(t), env.Namespace(t)
	stop := startManager(t, ops, true)
	base := "http://" + testenv.StartVerifier(t, env.Config, verifier.Options{Namespace: ops}).Addr
	plaintext := issue(t, base, ns, "leaked")["leaked"]
	k := &keywardv1alpha1.APIKey{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "leaked"}, k); err != nil {
		t.Fatal(err)
	}

	stop()
	hashed := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ops, Name: record.SecretName(string(k.UID))}, hashed); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	patch := client.MergeFrom(hashed.DeepCopy())
	hashed.Data[record.DataState] = []byte(record.StateRevoked)
	if err := env.Client.Patch(ctx, hashed, patch); err != nil {
		t.Fatalf("marking the hashed record revoked: %v", err)
	}
	if d := refusedWithin(t, base, ns, plaintext, "revoked", start); d > time.Second {
		t.Errorf("break-glass revocation refused after %v, want within 1s", d)
	}

	startManager(t, ops, true)
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "leaked"}, k); err != nil {
			return err
		}
		if k.Status.Phase != keywardv1alpha1.APIKeyRevoked {
			return fmt.Errorf("APIKey phase %q, want Revoked", k.Status.Phase)
		}
		return nil
	})
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(hashed), hashed); err != nil {
		t.Fatal(err)
	}
	if got := record.State(hashed.Data[record.DataState]); got != record.StateRevoked {
		t.Errorf("the manager put the hashed record back to %q", got)
	}
	if code, reason := verify(t, base, ns, plaintext); code != http.StatusUnauthorized || reason != "revoked" {
		t.Errorf("after the manager came back the key answers %d %s", code, reason)
	}
}
