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

package verifier_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/test/e2e"
)

// TestThroughNginx runs the whole path: a client calls a real nginx whose
// auth location is ingress-nginx's, nginx asks the verifier, and the
// upstream echoes what reached it.
func TestThroughNginx(t *testing.T) {
	t.Parallel()
	s := startStack(t, -1)
	s.setup(t)
	k, plaintext, _ := s.issue(t, "edge")
	_, revokedKey, _ := s.issue(t, "gone")
	gone := k.DeepCopy()
	gone.Name = "gone"
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(gone), gone); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(gone.DeepCopy())
	gone.Spec.Revoked = true
	if err := env.Client.Patch(context.Background(), gone, patch); err != nil {
		t.Fatal(err)
	}
	s.until(t, revokedKey, 401)

	upstream := e2e.Echo(t)
	for _, expose := range []bool{false, true} {
		name := "ingress-nginx defaults"
		if expose {
			name = "with X-Auth-Reason exposed"
		}
		t.Run(name, func(t *testing.T) {
			ngx := e2e.StartNginx(t, e2e.NginxOptions{
				AuthURL:          s.base + "/v1/verify/" + s.ns + "/things",
				Upstream:         upstream.URL,
				ResponseHeaders:  []string{"X-Auth-Application", "X-Auth-Key", "X-Auth-Scopes", "X-Auth-Namespace", "X-Auth-External-ID"},
				ExposeAuthReason: expose,
			})
			do := func(method, path, auth string, body io.Reader) *http.Response {
				t.Helper()
				req, _ := http.NewRequest(method, ngx.URL+path, body)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				// A client may not forge what the verifier vouches for.
				req.Header.Set("X-Auth-Application", "forged")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				return resp
			}

			resp := do("GET", "/v1/things/42?page=2", "Bearer "+plaintext, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("allowed request: %d\nnginx error log:\n%s", resp.StatusCode, ngx.ErrorLog())
			}
			echoed, err := e2e.DecodeEcho(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			k, err := keys.Parse(plaintext)
			if err != nil {
				t.Fatal(err)
			}
			id := k.ID()
			for h, want := range map[string]string{
				"X-Auth-Application": "acme", "X-Auth-Key": id, "X-Auth-Scopes": "read", "X-Auth-Namespace": s.ns,
			} {
				if got := echoed.Headers.Get(h); got != want {
					t.Errorf("upstream got %s %q, want %q", h, got, want)
				}
			}
			if echoed.URI != "/v1/things/42?page=2" {
				t.Errorf("upstream got URI %q", echoed.URI)
			}

			resp = do("PUT", "/v1/things/42", "Bearer "+plaintext, strings.NewReader(`{"name":"x"}`))
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("a method the scope lacks: %d, want 403", resp.StatusCode)
			}
			resp = do("GET", "/admin", "Bearer "+plaintext, nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("a path the scope lacks: %d, want 403", resp.StatusCode)
			}
			resp = do("GET", "/v1/things/%2e%2e/%2e%2e/admin", "Bearer "+plaintext, nil)
			if resp.StatusCode == 200 {
				t.Errorf("an encoded dot-dot escape was let through")
			}

			for _, c := range []struct {
				auth, reason string
			}{
				{"", "missing"},
				{"Bearer " + revokedKey, "revoked"},
				{"Bearer kt_notakey", "malformed"},
			} {
				resp := do("GET", "/v1/things/1", c.auth, nil)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("%s: %d, want 401", c.reason, resp.StatusCode)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="`+s.ns+`/things"` {
					t.Errorf("%s: WWW-Authenticate %q", c.reason, got)
				}
				if expose && resp.Header.Get("X-Auth-Reason") != c.reason {
					t.Errorf("X-Auth-Reason %q, want %q", resp.Header.Get("X-Auth-Reason"), c.reason)
				}
			}
		})
	}
}
