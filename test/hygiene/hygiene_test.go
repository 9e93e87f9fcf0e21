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

// Package hygiene holds the test that no plaintext key leaves the two places
// it may be: the delivery Secret and the consumer.
package hygiene

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/go-logr/logr"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/test/testgen"
	"github.com/keyward/keyward/verifier"
)

var (
	env  *testenv.Env
	logs = &testenv.SyncBuffer{}
)

func TestMain(m *testing.M) {
	// Everything any component logs, at every verbosity, lands in logs.
	logf.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(true), zap.Level(zapcore.Level(-10))))
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("v", "10")
	_ = fs.Set("logtostderr", "false")
	klog.SetOutput(logs)
	klog.SetLogger(logf.Log.WithName("klog"))
	testenv.Main(m, &env)
}

// leak reports where a plaintext appears in s, in clear or in base64.
func leak(s string, plaintexts []string) string {
	for _, p := range plaintexts {
		random := p[strings.IndexByte(p, '_')+1:]
		needles := []string{p, base64.StdEncoding.EncodeToString([]byte(p))}
		// Any 8 characters of the key's body: a hex dump (client-go's, of
		// a protobuf body) cuts it into lines of 16 bytes, so the whole
		// key never appears in one piece. 62^8 makes a chance match in a
		// few MB of logs about one in 10^8.
		for i := 0; i+8 <= len(random); i++ {
			needles = append(needles, random[i:i+8])
		}
		for _, needle := range needles {
			if i := strings.Index(s, needle); i >= 0 {
				from := max(0, i-120)
				return strings.ReplaceAll(s[from:min(len(s), i+60)], needle, "<PLAINTEXT>")
			}
		}
	}
	return ""
}

// TestNoPlaintextAnywhere runs a full flow (issue, verify, disable, revoke,
// a rejected key) with every log captured, then looks for the plaintexts in
// the logs, the events, every status and the metrics.
func TestNoPlaintextAnywhere(t *testing.T) {
	env.Need(t)
	ops, ns := env.Namespace(t), env.Namespace(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testenv.StartManager(t, env.Config, manager.Options{
		Namespace: ops, WatchNamespaces: []string{ops, ns}, MetricsAddr: "127.0.0.1:0", ProbeAddr: "0",
	})
	v, err := verifier.Start(ctx, env.Config, verifier.Options{
		Namespace: ops, Listen: "127.0.0.1:0", ProbeAddr: "127.0.0.1:0", LastUsedInterval: time.Second, Log: logf.Log.WithName("verifier"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = v.Wait() }()

	c := env.Client
	for _, o := range []client.Object{testgen.KeyGroup(ns, "things", testgen.WithLimits(10, 2)), testgen.Application(ns, "acme", "things")} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	var plaintexts []string
	// The test's own reads of delivery Secrets log nothing: client-go
	// dumps response bodies at verbosity 8, and what is scanned is what
	// keyward logs.
	quiet := logr.NewContext(ctx, logr.Discard())
	for _, name := range []string{"one", "two", "three"} {
		if err := c.Create(ctx, testgen.APIKey(ns, name, "acme")); err != nil {
			t.Fatal(err)
		}
	}
	keys := map[string]*keywardv1alpha1.APIKey{}
	testenv.Eventually(t, 30*time.Second, func() error {
		for _, name := range []string{"one", "two", "three"} {
			k := &keywardv1alpha1.APIKey{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
				return err
			}
			if k.Status.Phase != keywardv1alpha1.APIKeyActive && k.Status.Phase != keywardv1alpha1.APIKeyRejected {
				return fmt.Errorf("%s: %q", name, k.Status.Phase)
			}
			keys[name] = k
		}
		return nil
	})
	for _, k := range keys {
		if k.Status.Phase != keywardv1alpha1.APIKeyActive {
			continue
		}
		s := &corev1.Secret{}
		if err := c.Get(quiet, client.ObjectKey{Namespace: ns, Name: k.DeliverySecretName()}, s); err != nil {
			t.Fatal(err)
		}
		plaintexts = append(plaintexts, string(s.Data[record.DeliveryAPIKey]))
	}
	if len(plaintexts) != 2 {
		t.Fatalf("want 2 issued keys (limit 2), got %d", len(plaintexts))
	}

	// Verify: allowed, refused for scope, for a bad checksum, with the key
	// in every credential form.
	call := func(h map[string]string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+v.Addr+"/v1/verify/"+ns+"/things", nil)
		for k, val := range h {
			req.Header.Set(k, val)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if w := leak(string(body)+fmt.Sprint(resp.Header), plaintexts); w != "" {
			t.Errorf("a verifier answer carries a plaintext: %s", w)
		}
		return resp.StatusCode
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if code := call(map[string]string{"Authorization": "Bearer " + plaintexts[0], "X-Original-Method": "GET", "X-Original-URL": "/v1/things/1"}); code != 200 {
			return fmt.Errorf("verify: %d", code)
		}
		return nil
	})
	call(map[string]string{"X-API-Key": plaintexts[1], "X-Original-Method": "DELETE", "X-Original-URL": "/v1/things/1"})
	call(map[string]string{"Authorization": "rest_api_key=" + testgen.BadChecksum(plaintexts[1]), "X-Original-Method": "GET", "X-Original-URL": "/v1/things/1"})

	// Rotate one: its successor passes through the delivery Secret
	// (staged, then promoted), the hashed record and the verifier too.
	rotated := keys[activeNames(keys)[0]]
	delivered := func() (string, bool) {
		s := &corev1.Secret{}
		if err := c.Get(quiet, client.ObjectKey{Namespace: ns, Name: rotated.DeliverySecretName()}, s); err != nil {
			t.Fatal(err)
		}
		_, staged := s.Data["api-key-next"]
		return string(s.Data[record.DeliveryAPIKey]), staged
	}
	before, _ := delivered()
	testenv.Eventually(t, 30*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(rotated), rotated); err != nil {
			return err
		}
		patch := client.MergeFrom(rotated.DeepCopy())
		rotated.Annotations[keywardv1alpha1.AnnotationRotate] = "hygiene"
		return c.Patch(ctx, rotated, patch)
	})
	testenv.Eventually(t, 30*time.Second, func() error {
		if now, staged := delivered(); now == before || staged {
			return fmt.Errorf("not rotated yet")
		}
		return nil
	})
	successor, _ := delivered()
	plaintexts = append(plaintexts, successor)
	for _, k := range []string{before, successor} {
		if code := call(map[string]string{"Authorization": "Bearer " + k, "X-Original-Method": "GET", "X-Original-URL": "/v1/things/1"}); code != 200 {
			t.Errorf("a key of the rotation in its overlap: %d", code)
		}
	}

	// Disable one, revoke the other, delete one.
	for i, change := range []func(*keywardv1alpha1.APIKey){
		func(k *keywardv1alpha1.APIKey) { k.Spec.Disabled = true },
		func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true },
	} {
		var k *keywardv1alpha1.APIKey
		for _, kk := range keys {
			if kk.Status.Phase == keywardv1alpha1.APIKeyActive && (i == 0) == (kk.Name == activeNames(keys)[0]) {
				k = kk
			}
		}
		testenv.Eventually(t, 30*time.Second, func() error {
			if err := c.Get(ctx, client.ObjectKeyFromObject(k), k); err != nil {
				return err
			}
			patch := client.MergeFrom(k.DeepCopy())
			change(k)
			return c.Patch(ctx, k, patch)
		})
	}
	// Wait for evidence that the writes to scan have happened: both changes
	// reconciled (phase and observedGeneration), and the first key's use
	// recorded by the verifier.
	testenv.Eventually(t, 30*time.Second, func() error {
		phases := map[keywardv1alpha1.APIKeyPhase]bool{}
		used := false
		for _, name := range activeNames(keys) {
			k := &keywardv1alpha1.APIKey{}
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, k); err != nil {
				return err
			}
			if k.Status.ObservedGeneration != k.Generation {
				return fmt.Errorf("%s: generation %d not reconciled yet", name, k.Generation)
			}
			phases[k.Status.Phase] = true
			used = used || k.Status.LastUsedTime != nil
		}
		if !phases[keywardv1alpha1.APIKeyDisabled] || !phases[keywardv1alpha1.APIKeyRevoked] {
			return fmt.Errorf("phases %v, want Disabled and Revoked", phases)
		}
		if !used {
			return fmt.Errorf("no last use recorded yet")
		}
		var events eventsv1.EventList
		if err := c.List(ctx, &events, client.InNamespace(ns)); err != nil {
			return err
		}
		reasons := map[string]bool{}
		for _, e := range events.Items {
			reasons[e.Reason] = true
		}
		if !reasons["Disabled"] || !reasons["Revoked"] {
			return fmt.Errorf("event reasons so far %v, want Disabled and Revoked", reasons)
		}
		return nil
	})

	scanned := map[string]int{}
	check := func(where, s string) {
		scanned[where]++
		if w := leak(s, plaintexts); w != "" {
			t.Errorf("a plaintext key appears in %s: …%s…", where, w)
		}
	}
	check("the manager's and verifier's logs", logs.String())
	if len(logs.String()) < 1000 {
		t.Fatalf("only %d bytes of logs were captured: the test is not listening", len(logs.String()))
	}
	var events eventsv1.EventList
	if err := c.List(ctx, &events); err != nil {
		t.Fatal(err)
	}
	for _, e := range events.Items {
		b, _ := json.Marshal(e)
		check("events", string(b))
	}
	var coreEvents corev1.EventList
	if err := c.List(ctx, &coreEvents); err != nil {
		t.Fatal(err)
	}
	for _, e := range coreEvents.Items {
		b, _ := json.Marshal(e)
		check("events", string(b))
	}
	for _, l := range []client.ObjectList{&keywardv1alpha1.APIKeyList{}, &keywardv1alpha1.ApplicationList{}, &keywardv1alpha1.KeyGroupList{}} {
		if err := c.List(ctx, l); err != nil {
			t.Fatal(err)
		}
		items, _ := meta.ExtractList(l)
		for _, o := range items {
			b, _ := json.Marshal(o)
			check("keyward objects and their status", string(b))
		}
	}
	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.InNamespace(ops)); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		b, _ := json.Marshal(s)
		check("hashed Secrets", string(b))
	}
	for _, addr := range []string{v.ProbeAddr} {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		check("the verifier's metrics", string(b))
		if !strings.Contains(string(b), "keyward_verifier_requests_total") {
			t.Errorf("the verifier's metrics lack the request counter")
		}
	}
	if scanned["events"] == 0 || scanned["hashed Secrets"] == 0 {
		t.Fatalf("nothing to scan: %v", scanned)
	}
	t.Logf("scanned: %v; %d bytes of logs", scanned, len(logs.String()))
}

func activeNames(keys map[string]*keywardv1alpha1.APIKey) []string {
	var out []string
	for _, name := range []string{"one", "two", "three"} {
		if k := keys[name]; k != nil && k.Status.Phase == keywardv1alpha1.APIKeyActive {
			out = append(out, name)
		}
	}
	return out
}
