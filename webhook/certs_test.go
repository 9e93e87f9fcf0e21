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
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/webhook"
)

// TestSelfManagedCertificates starts a manager with
// --webhook-cert-mode=self-managed against a fresh operator namespace, with
// webhook configurations of its own that call it on localhost (limited to
// one namespace, so the other tests' webhooks are not disturbed). It must
// create the certificate Secret, inject the CA bundle so the API server's
// calls succeed, report ready, and rotate its serving certificate (here
// seconds after issuing it) while calls keep succeeding.
func TestSelfManagedCertificates(t *testing.T) {
	ctx := context.Background()
	opNS, ns := env.Namespace(t), env.Namespace(t)
	port, probePort := freePort(t), freePort(t)
	validating, mutating := "test-validating-"+ns, "test-mutating-"+ns
	installWebhookConfigurations(t, ns, port, validating, mutating)

	// Until the manager injects a CA bundle and serves, the API server
	// cannot call the webhook and, failurePolicy Fail, refuses the write.
	if err := env.Client.Create(ctx, testgen.KeyGroup(ns, "before"), client.DryRunAll); err == nil {
		t.Fatal("a KeyGroup was admitted before any webhook served it")
	}
	secretKey := client.ObjectKey{Namespace: opNS, Name: webhook.DefaultCertSecretName}

	start := time.Now()
	startManagerWithCerts(t, opNS, port, probePort, validating, mutating)

	// The Secret is created and filled, the CA injected into both
	// configurations.
	secret := &corev1.Secret{}
	testenv.Eventually(t, 60*time.Second, func() error {
		if err := env.Client.Get(ctx, secretKey, secret); err != nil {
			return err
		}
		if len(secret.Data["ca.crt"]) == 0 || len(secret.Data["tls.crt"]) == 0 || len(secret.Data["tls.key"]) == 0 {
			return fmt.Errorf("Secret %s not filled yet: keys %v", secretKey, keys(secret.Data))
		}
		return nil
	})
	ca := secret.Data["ca.crt"]
	testenv.Eventually(t, 60*time.Second, func() error {
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: validating}, v); err != nil {
			return err
		}
		if err := env.Client.Get(ctx, client.ObjectKey{Name: mutating}, m); err != nil {
			return err
		}
		if !bytes.Equal(v.Webhooks[0].ClientConfig.CABundle, ca) || !bytes.Equal(m.Webhooks[0].ClientConfig.CABundle, ca) {
			return fmt.Errorf("CA bundle not injected yet")
		}
		return nil
	})

	// The webhooks answer over TLS, and the manager says it is ready.
	testenv.Eventually(t, 60*time.Second, func() error {
		return env.Client.Create(ctx, testgen.KeyGroup(ns, "first"))
	})
	testenv.Eventually(t, 60*time.Second, func() error { return ready(probePort) })
	t.Logf("ready %s after start", time.Since(start).Round(time.Millisecond))
	app := testgen.Application(ns, "app-0", "first")
	if err := env.Client.Create(ctx, app); err != nil {
		t.Fatal(err)
	}
	if app.Annotations["keyward.dev/created-by"] == "" {
		t.Errorf("the mutating webhook did not record the creator: %v", app.Annotations)
	}

	// Rotation: the served certificate changes, signed by the same CA, and
	// every call made meanwhile succeeds.
	first := servedCert(t, port, ca)
	var (
		calls int
		next  *x509.Certificate
	)
	testenv.Eventually(t, 90*time.Second, func() error {
		calls++
		if err := env.Client.Create(ctx, testgen.KeyGroup(ns, "g-"+strconv.Itoa(calls))); err != nil {
			t.Fatalf("call %d during rotation failed: %v", calls, err)
		}
		next = servedCert(t, port, ca)
		if next.Equal(first) {
			return fmt.Errorf("still serving the first certificate (not after %s)", first.NotAfter.Format(time.RFC3339))
		}
		return nil
	})
	t.Logf("rotated after %d calls: the first certificate expired at %s, the next at %s", calls, first.NotAfter.Format(time.RFC3339), next.NotAfter.Format(time.RFC3339))
	if err := env.Client.Create(ctx, testgen.KeyGroup(ns, "after-rotation")); err != nil {
		t.Fatalf("a call after rotation failed: %v", err)
	}
	if err := env.Client.Get(ctx, secretKey, secret); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret.Data["ca.crt"], ca) {
		t.Error("the CA changed: it should outlive many serving certificates")
	}
	if err := ready(probePort); err != nil {
		t.Errorf("not ready after rotation: %v", err)
	}

	// The expiry gauge follows the served certificate and the CA.
	block, _ := pem.Decode(ca)
	if block == nil {
		t.Fatal("the Secret's ca.crt holds no PEM block")
	}
	caCert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		got := certificateExpiry(t)
		want := map[string]float64{"serving": float64(servedCert(t, port, ca).NotAfter.Unix()), "ca": float64(caCert.NotAfter.Unix())}
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("keyward_webhook_certificate_expiry_timestamp_seconds: got %v, want %v", got, want)
			}
		}
		return nil
	})
}

// certificateExpiry reads keyward_webhook_certificate_expiry_timestamp_seconds
// from the manager's registry, by certificate.
func certificateExpiry(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "keyward_webhook_certificate_expiry_timestamp_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "certificate" {
					out[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return out
}

// startManagerWithCerts runs a manager that keeps its own certificate,
// renewing the serving certificate 8s after issuing it. Its controllers
// watch only its own namespace: the shared manager reconciles the rest.
func startManagerWithCerts(t *testing.T, opNS string, port, probePort int, validating, mutating string) {
	t.Helper()
	testenv.StartManager(t, env.Config, manager.Options{
		Namespace:       opNS,
		WatchNamespaces: []string{opNS},
		MetricsAddr:     "0",
		ProbeAddr:       "127.0.0.1:" + strconv.Itoa(probePort),
		Webhooks: &manager.WebhookOptions{
			Host: "127.0.0.1", Port: port, CertDir: t.TempDir(),
			CertMode:                    manager.CertModeSelfManaged,
			ValidatingConfigurationName: validating,
			MutatingConfigurationName:   mutating,
			ExtraDNSNames:               []string{"localhost"},
			ServerCertDuration:          time.Hour,
			LookaheadInterval:           time.Hour - 8*time.Second,
			RotationCheckFrequency:      time.Second,
		},
	})
}

// installWebhookConfigurations registers the KeyGroup validating webhook and
// the Application mutating webhook at https://localhost:port, for namespace
// ns only, without a CA bundle: the manager injects it.
func installWebhookConfigurations(t *testing.T, ns string, port int, validating, mutating string) {
	t.Helper()
	url := func(path string) *string { return ptr.To(fmt.Sprintf("https://localhost:%d%s", port, path)) }
	only := &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}
	rule := func(resource string) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{"keyward.dev"}, APIVersions: []string{"v1alpha1"}, Resources: []string{resource}},
		}}
	}
	fail, none := admissionregistrationv1.Fail, admissionregistrationv1.SideEffectClassNone
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: validating},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    "vkeygroup.keyward.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: url("/validate-keyward-dev-v1alpha1-keygroup")},
			Rules:                   rule("keygroups"),
			NamespaceSelector:       only,
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: mutating},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "mapplication.keyward.dev",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: url("/mutate-keyward-dev-v1alpha1-application")},
			Rules:                   rule("applications"),
			NamespaceSelector:       only,
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](5),
		}},
	}
	create(t, v, m)
	t.Cleanup(func() {
		_ = env.Client.Delete(context.Background(), v)
		_ = env.Client.Delete(context.Background(), m)
	})
}

// servedCert is the certificate the webhook server presents, verified
// against ca for localhost.
func servedCert(t *testing.T, port int, ca []byte) *x509.Certificate {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("the Secret's ca.crt holds no certificate")
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS handshake with the webhook server: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// ready asks the manager's /readyz, which includes the webhook server and
// its certificates.
func ready(port int) error {
	for _, path := range []string{"/readyz", "/readyz/webhook-certs", "/readyz/webhook"} {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
	}
	return nil
}

func keys(m map[string][]byte) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
