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

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/verifier"
)

// env is the control plane of the tests that issue real keys (Traefik's);
// nil under -short. The nginx tests here use a stub verifier and none.
var env *testenv.Env

func TestMain(m *testing.M) {
	w := io.Discard
	if os.Getenv("KEYWARD_TEST_LOGS") != "" {
		w = os.Stderr
	}
	logf.SetLogger(zap.New(zap.WriteTo(w), zap.UseDevMode(true)))
	testenv.Main(m, &env)
}

// traefikKeys are the keys TestTraefik issues, by APIKey name.
type traefikKeys struct {
	reader   string // scope read (GET /v1/things/*)
	remote   string // scope read, from 203.0.113.0/24 only
	loopback string // scope read, from 127.0.0.0/8 only
	readerID string
}

// traefikStack issues keys through the manager, starts a verifier that
// believes X-Real-IP from 127.0.0.1 (Traefik's address here, as the guide
// says to set --trusted-proxies), and returns its verify URL for the
// KeyGroup "things".
func traefikStack(t *testing.T) (verifyURL, ns string, k traefikKeys) {
	t.Helper()
	env.Need(t)
	ctx := context.Background()
	ops := env.Namespace(t)
	ns = env.Namespace(t)
	testenv.StartManager(t, env.Config, manager.Options{
		Namespace: ops, WatchNamespaces: []string{ops, ns}, MetricsAddr: "0", ProbeAddr: "0",
	})
	for _, o := range []client.Object{
		testgen.KeyGroup(ns, "things"),
		testgen.Application(ns, "acme", "things", testgen.WithExternalID("acme-ext")),
	} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	k.reader = issue(t, testgen.APIKey(ns, "reader", "acme"))
	k.remote = issue(t, testgen.APIKey(ns, "remote", "acme", testgen.WithSourceRanges("203.0.113.0/24")))
	k.loopback = issue(t, testgen.APIKey(ns, "loopback", "acme", testgen.WithSourceRanges("127.0.0.0/8")))
	parsed, err := keys.Parse(k.reader)
	if err != nil {
		t.Fatal(err)
	}
	k.readerID = parsed.ID()

	v := testenv.StartVerifier(t, env.Config, verifier.Options{
		Namespace: ops, TrustedProxies: []string{"127.0.0.1/32"}, LastUsedInterval: -1,
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		if !v.Ready() {
			return errors.New("verifier not ready")
		}
		return nil
	})
	return "http://" + v.Addr + "/v1/verify/" + ns + "/things", ns, k
}

// issue creates an APIKey and returns its plaintext once the manager has
// issued it (Ready, delivery Secret written).
func issue(t *testing.T, key *keywardv1alpha1.APIKey) string {
	t.Helper()
	ctx := context.Background()
	if err := env.Client.Create(ctx, key); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, func() error {
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(key), key); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(key.Status.Conditions, keywardv1alpha1.ConditionReady) {
			return fmt.Errorf("APIKey %s not Ready: %+v", key.Name, key.Status)
		}
		return nil
	})
	s := &corev1.Secret{}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: key.DeliverySecretName()}, s); err != nil {
		t.Fatal(err)
	}
	return string(s.Data[record.DeliveryAPIKey])
}

// wantRefused checks that the verifier's refusal reached the client as it
// is: status, X-Auth-Reason, the JSON body and, on 401, WWW-Authenticate.
func wantRefused(t *testing.T, resp *http.Response, body string, status int, reason, realm string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %s, want %d %s; body: %s", resp.Status, status, reason, body)
		return
	}
	wantHeader(t, "client", resp.Header, "X-Auth-Reason", reason)
	var b struct{ Reason, Message string }
	if err := json.Unmarshal([]byte(body), &b); err != nil || b.Reason != reason || b.Message == "" {
		t.Errorf("body %q, want the verifier's JSON with reason %q", body, reason)
	}
	if status == http.StatusUnauthorized {
		wantHeader(t, "client", resp.Header, "WWW-Authenticate", `Bearer realm="`+realm+`"`)
	} else {
		wantNoHeader(t, "client", resp.Header, "WWW-Authenticate")
	}
}

// TestTraefik runs the whole path through a real Traefik: its forwardAuth
// middleware exactly as docs/traefik.md writes it asks a real verifier
// (keys issued by the manager on a real API server), and an echo upstream
// shows what reached it.
func TestTraefik(t *testing.T) {
	t.Parallel()
	verifyURL, ns, k := traefikStack(t)
	realm := ns + "/things"
	documented, err := DocumentedForwardAuth()
	if err != nil {
		t.Fatal(err)
	}
	if documented.TrustForwardHeader || len(documented.AuthRequestHeaders) == 0 || len(documented.AuthResponseHeaders) != len(headers) {
		t.Fatalf("docs/traefik.md's forwardAuth is not the one this test means to check: %+v", documented)
	}
	upstream := Echo(t)
	tr := StartTraefik(t, TraefikOptions{ForwardAuth: documented.WithAddress(verifyURL), Upstream: upstream.URL, AccessLog: true})
	bearer := func(key string) map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

	t.Run("allowed, with the verifier's X-Auth-* headers and not the client's", func(t *testing.T) {
		const uri = "/v1/things/42?page=2"
		hdr := bearer(k.reader)
		for _, h := range headers {
			hdr[h] = "forged"
		}
		resp, body := do(t, http.MethodGet, tr.URL+uri, "", hdr)
		e := echoed(t, resp, body)
		if e.Method != http.MethodGet || e.URI != uri {
			t.Errorf("upstream got %s %s, want GET %s", e.Method, e.URI, uri)
		}
		for h, want := range map[string]string{
			"X-Auth-Key": k.readerID, "X-Auth-Application": "acme", "X-Auth-Scopes": "read",
			"X-Auth-Namespace": ns, "X-Auth-External-ID": "acme-ext",
		} {
			wantHeader(t, "upstream", e.Headers, h, want)
		}
		wantNoHeader(t, "client", resp.Header, "X-Auth-Reason")
	})

	t.Run("X-API-Key reaches the verifier", func(t *testing.T) {
		resp, body := do(t, http.MethodGet, tr.URL+"/v1/things/1", "", map[string]string{"X-API-Key": k.reader})
		wantHeader(t, "upstream", echoed(t, resp, body).Headers, "X-Auth-Key", k.readerID)
	})

	t.Run("401 reaches the client", func(t *testing.T) {
		other, err := keys.Generate("kt")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			hdr    map[string]string
			reason string
		}{
			{nil, "missing"},
			{bearer(testgen.BadChecksum(k.reader)), "malformed"},
			{bearer(other.Plaintext()), "unknown"},
		} {
			resp, body := do(t, http.MethodGet, tr.URL+"/v1/things/1", "", c.hdr)
			wantRefused(t, resp, body, http.StatusUnauthorized, c.reason, realm)
		}
	})

	t.Run("403 reaches the client", func(t *testing.T) {
		resp, body := do(t, http.MethodPut, tr.URL+"/v1/things/1", `{"x":1}`, bearer(k.reader))
		wantRefused(t, resp, body, http.StatusForbidden, "scope", realm)
		resp, body = do(t, http.MethodGet, tr.URL+"/admin", "", bearer(k.reader))
		wantRefused(t, resp, body, http.StatusForbidden, "scope", realm)
		resp, body = do(t, http.MethodGet, tr.URL+"/v1/things/%2e%2e/%2e%2e/admin", "", bearer(k.reader))
		if resp.StatusCode == http.StatusOK {
			t.Errorf("an encoded dot-dot escape was let through: %s", body)
		}
	})

	// Each forged statement names a request the key may make (GET
	// /v1/things/1) while the client makes one it may not.
	t.Run("client-forged statements of the request are not believed", func(t *testing.T) {
		for _, c := range []struct {
			name, method, path string
			forged             map[string]string
			reason             string
		}{
			{"X-Forwarded-Uri", http.MethodGet, "/admin", map[string]string{"X-Forwarded-Uri": "/v1/things/1"}, "scope"},
			{"X-Forwarded-Method", http.MethodPut, "/v1/things/1", map[string]string{"X-Forwarded-Method": "GET"}, "scope"},
			// Dropped by authRequestHeaders: the verifier judges Traefik's
			// statement alone.
			{"X-Original-URL", http.MethodDelete, "/admin", map[string]string{
				"X-Original-URL": "https://api.example.com/v1/things/1", "X-Original-URI": "/v1/things/1", "X-Original-Method": "GET",
			}, "scope"},
			// Passed on, as the guide says, and refused by the verifier.
			{"X-HTTP-Method-Override", http.MethodGet, "/v1/things/1", map[string]string{"X-HTTP-Method-Override": "DELETE"}, "path"},
		} {
			hdr := bearer(k.reader)
			for h, v := range c.forged {
				hdr[h] = v
			}
			resp, body := do(t, c.method, tr.URL+c.path, "", hdr)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Auth-Reason") != c.reason {
				t.Errorf("%s: %s %s with %v: %s %q, want 403 %s; body: %s", c.name, c.method, c.path, c.forged,
					resp.Status, resp.Header.Get("X-Auth-Reason"), c.reason, body)
			}
		}
	})

	// The verifier believes X-Real-IP from Traefik (--trusted-proxies), and
	// Traefik's entryPoint replaces what a client sent with its address.
	t.Run("client-forged X-Real-IP is not believed", func(t *testing.T) {
		forged := map[string]string{"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "203.0.113.9"}
		hdr := bearer(k.remote)
		for h, v := range forged {
			hdr[h] = v
		}
		resp, body := do(t, http.MethodGet, tr.URL+"/v1/things/1", "", hdr)
		wantRefused(t, resp, body, http.StatusForbidden, "source", realm)

		hdr = bearer(k.loopback)
		for h, v := range forged {
			hdr[h] = v
		}
		resp, body = do(t, http.MethodGet, tr.URL+"/v1/things/1", "", hdr)
		e := echoed(t, resp, body)
		wantHeader(t, "upstream", e.Headers, "X-Real-Ip", "127.0.0.1")
	})

	// What docs/traefik.md says happens when authRequestHeaders is left
	// out: every client header reaches the verifier, which refuses a forged
	// statement disagreeing with Traefik's as 403 path, never judging the
	// forged request.
	t.Run("without authRequestHeaders, a forged statement is refused as path", func(t *testing.T) {
		fa := documented.WithAddress(verifyURL)
		fa.AuthRequestHeaders = nil
		open := StartTraefik(t, TraefikOptions{ForwardAuth: fa, Upstream: upstream.URL})
		hdr := bearer(k.reader)
		hdr["X-Original-URL"], hdr["X-Original-Method"] = "https://api.example.com/v1/things/1", "GET"
		resp, body := do(t, http.MethodDelete, open.URL+"/admin", "", hdr)
		wantRefused(t, resp, body, http.StatusForbidden, "path", realm)
		resp, body = do(t, http.MethodGet, open.URL+"/v1/things/1", "", bearer(k.reader))
		wantHeader(t, "upstream", echoed(t, resp, body).Headers, "X-Auth-Key", k.readerID)
	})

	t.Run("an unreachable verifier is a 500", func(t *testing.T) {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		fa := documented.WithAddress(fmt.Sprintf("http://127.0.0.1:%d/v1/verify/%s/things", port, ns))
		down := StartTraefik(t, TraefikOptions{ForwardAuth: fa, Upstream: upstream.URL})
		resp, body := do(t, http.MethodGet, down.URL+"/v1/things/1", "", bearer(k.reader))
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("status %s, want 500; body: %s", resp.Status, body)
		}
	})

	if t.Failed() {
		t.Logf("traefik access log:\n%s", tr.AccessLog())
	}
}

func TestTraefikConfigRejected(t *testing.T) {
	fa := &ForwardAuth{Address: "http://127.0.0.1:1/v1/verify/ns/group"}
	for _, o := range []TraefikOptions{
		{ForwardAuth: fa, Upstream: ""},
		{ForwardAuth: fa, Upstream: "127.0.0.1:1"},
		{ForwardAuth: &ForwardAuth{Address: "/v1/verify/ns/group"}, Upstream: "http://127.0.0.1:1"},
	} {
		if _, _, err := traefikConfig(t.TempDir(), 1, o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
}
