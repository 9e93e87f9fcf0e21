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

// Package verifiertest holds checks of the verifier that more than one test
// package runs, each against a control plane set up its own way.
package verifiertest

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/verifier"
)

var httpClient = &http.Client{Timeout: 5 * time.Second}

// hashedKey is a hashed Secret written as the manager writes it, and the
// plaintext it holds.
type hashedKey struct {
	secret    *corev1.Secret
	plaintext string
	id        string
}

func newHashedKey(t *testing.T, ops, ns string, i int) *hashedKey {
	t.Helper()
	k, err := keys.Generate("kt")
	if err != nil {
		t.Fatal(err)
	}
	uid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	rec := record.Record{
		Digest: k.Digest(), KeyID: k.ID(), Namespace: ns, KeyGroup: "things", Application: "acme",
		APIKey: fmt.Sprintf("key-%03d", i), Scopes: []string{"read"}, State: record.StateActive,
	}
	return &hashedKey{secret: &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ops, Name: record.SecretName(uid), Labels: rec.Labels(uid)},
		Data:       rec.SecretData(),
	}, plaintext: k.Plaintext(), id: k.ID()}
}

// createKeys creates n hashed Secrets for the KeyGroup "things" of ns, in
// ops, numbered from first.
func createKeys(t *testing.T, env *testenv.Env, ops, ns string, first, n int) []*hashedKey {
	t.Helper()
	var out []*hashedKey
	for i := range n {
		k := newHashedKey(t, ops, ns, first+i)
		if err := env.Client.Create(context.Background(), k.secret); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	return out
}

// startVerifier runs a verifier on ops until the test ends and returns it
// once ready.
func startVerifier(t *testing.T, env *testenv.Env, ops string) *verifier.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	v, err := verifier.Start(ctx, env.Config, verifier.Options{
		Namespace: ops, Listen: "127.0.0.1:0", ProbeAddr: "127.0.0.1:0", LastUsedInterval: -1, Log: logf.Log.WithName("verifier"),
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = v.Wait()
	})
	testenv.Eventually(t, 20*time.Second, func() error {
		if !v.Ready() {
			return fmt.Errorf("not ready")
		}
		return nil
	})
	return v
}

// asker asks a verifier about keys of the KeyGroup "things" of ns.
type asker struct{ url string }

// check says what is wrong with the verifier's answer for k, or "": a 200
// must carry k's own key ID, a refusal the reason given.
func (a asker) check(k *hashedKey, status int, reason string) string {
	req, _ := http.NewRequest(http.MethodGet, a.url, nil)
	req.Header.Set("Authorization", "Bearer "+k.plaintext)
	req.Header.Set("X-Original-Method", "GET")
	req.Header.Set("X-Original-URL", "https://api.example.com/v1/things/1")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err.Error()
	}
	_ = resp.Body.Close()
	got := resp.Header.Get("X-Auth-Reason")
	if status == http.StatusOK {
		got, reason = resp.Header.Get("X-Auth-Key"), k.id
	}
	if resp.StatusCode != status || got != reason {
		return fmt.Sprintf("key of %s: %d %q, want %d %q", k.secret.Name, resp.StatusCode, got, status, reason)
	}
	return ""
}

// all checks every key of ks, for testenv.Eventually.
func (a asker) all(ks []*hashedKey, status int, reason string) func() error {
	return func() error {
		for _, k := range ks {
			if msg := a.check(k, status, reason); msg != "" {
				return fmt.Errorf("%s", msg)
			}
		}
		return nil
	}
}

// EveryKeyThroughListAndWatch checks that the verifier tells every key
// apart by its Secret through its initial list, then through watch events
// (added, modified, deleted). The verifier trims the Secrets it lists and
// watches to what it needs (verifier.slimSecret), to start in less memory.
func EveryKeyThroughListAndWatch(t *testing.T, env *testenv.Env) {
	t.Helper()
	ctx := context.Background()
	ops, ns := env.Namespace(t), env.Namespace(t)
	if err := env.Client.Create(ctx, testgen.KeyGroup(ns, "things")); err != nil {
		t.Fatal(err)
	}
	listed := createKeys(t, env, ops, ns, 0, 40)
	v := startVerifier(t, env, ops)
	a := asker{url: "http://" + v.Addr + "/v1/verify/" + ns + "/things"}
	if err := a.all(listed, http.StatusOK, "")(); err != nil {
		t.Fatalf("listed at start: %v", err)
	}

	watched := createKeys(t, env, ops, ns, 100, 20)
	testenv.Eventually(t, 10*time.Second, a.all(watched, http.StatusOK, ""))

	revoked, deleted, kept := listed[:10], listed[10:20], append(listed[20:], watched...)
	for _, k := range revoked {
		got := &corev1.Secret{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(k.secret), got); err != nil {
			t.Fatal(err)
		}
		got.Data[record.DataState] = []byte(record.StateRevoked)
		if err := env.Client.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range deleted {
		if err := env.Client.Delete(ctx, k.secret); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, a.all(revoked, http.StatusUnauthorized, "revoked"))
	testenv.Eventually(t, 10*time.Second, a.all(deleted, http.StatusUnauthorized, "unknown"))
	if err := a.all(kept, http.StatusOK, "")(); err != nil {
		t.Fatalf("after other keys were revoked and deleted: %v", err)
	}
}
