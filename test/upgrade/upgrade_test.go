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

// Package upgrade tests an upgrade from the previous release (commit
// d85117a, before key rotation) to this tree: objects the old release
// created keep working while the new manager and verifier replace the old
// ones, old and new verifier replicas answering side by side.
//
// The old release runs as it shipped: its binary, built from its commit
// (bin/upgrade/<commit>/, built once), as processes, with its CRDs and its
// admission webhooks. The new release runs in this process
// (testenv.StartManager, testenv.StartVerifier), webhooks included.
//
// The rollout, in order: the new CRDs over the old; a new verifier beside
// the old one, reading records as the old manager wrote them; the old
// manager stopped and the new one started with the new webhook
// configurations, taking over the old webhook certificate and adopting the
// old records; a key created, one revoked and two rotated with both
// verifiers answering; the old verifier stopped last. An old verifier does
// not read previous-digest, so during a rotation's overlap it refuses the
// previous key (401 unknown): the test asserts it, as DESIGN.md §2 says.
package upgrade

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/controllers"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/manager"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testenv"
	"github.com/keyward/keyward/verifier"
	"github.com/keyward/keyward/webhook"
)

var (
	env *testenv.Env
	old *release
)

// TestMain builds the previous release, then starts a control plane with
// its CRDs. A release that cannot be built fails the package: the test
// never skips for it (under -short without KEYWARD_REQUIRE_E2E=1 nothing is
// built and the test skips, as every end-to-end test does).
func TestMain(m *testing.M) {
	w := io.Discard
	if os.Getenv("KEYWARD_TEST_LOGS") != "" {
		w = os.Stderr
	}
	logf.SetLogger(zap.New(zap.WriteTo(w), zap.UseDevMode(true)))
	if testenv.Short() {
		os.Exit(m.Run())
	}
	root, err := testenv.RepoRoot()
	if err == nil {
		old, err = buildRelease(root, previousRelease)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "upgrade: the previous release:", err)
		os.Exit(1)
	}
	if old.Built > 0 {
		fmt.Fprintf(os.Stderr, "upgrade: built keyward %s in %s\n", old.Commit, old.Built.Round(time.Second))
	}
	testenv.Main(m, &env, testenv.Options{CRDDirectoryPaths: []string{old.CRDs}})
}

const (
	// ops is the operator's namespace, as shipped.
	ops   = manager.DefaultNamespace
	group = "devices"
	// trustedProxy is where the verifiers' callers (this test) are.
	trustedProxy = "127.0.0.1/32"
	// officeIP is inside the export key's allowedSourceRanges; elsewhere
	// is not.
	officeIP  = "203.0.113.7"
	elsewhere = "198.51.100.7"
)

// oldObjects are what a user applied under the old release, written in
// its API (no field it did not have), as its samples are.
const oldObjects = `
apiVersion: keyward.dev/v1alpha1
kind: KeyGroup
metadata: {name: devices}
spec:
  description: Device integration API
  keyPrefix: iot
  scopes:
  - name: device-downlinks
    rules:
    - paths: [/integration/device/sendmsg, /integration/device/clearmsgs]
      methods: [POST]
  - name: read-only-export
    rules:
    - paths: ["/integration/export/*"]
      methods: [GET, HEAD]
  - name: device-full
    rules:
    - paths: ["/integration/device/*"]
  limits: {maxApplications: 10, maxKeysPerApplication: 10}
---
# Applied before its Application (GitOps tools apply in any order): the old
# webhook recorded its creator in keyward.dev/grant-check, which it did for
# no other key.
apiVersion: keyward.dev/v1alpha1
kind: APIKey
metadata: {name: early}
spec:
  application: acme-dashboard
  scopes: [device-full]
---
apiVersion: keyward.dev/v1alpha1
kind: Application
metadata: {name: acme-dashboard}
spec:
  keyGroup: devices
  displayName: ACME dashboard
  type: Application
  externalID: 70B3D57ED0001234
---
apiVersion: keyward.dev/v1alpha1
kind: APIKey
metadata: {name: downlinks}
spec:
  application: acme-dashboard
  scopes: [device-downlinks]
  description: Downlinks from the dashboard backend
---
apiVersion: keyward.dev/v1alpha1
kind: APIKey
metadata: {name: export}
spec:
  application: acme-dashboard
  scopes: [read-only-export]
  allowedSourceRanges: [203.0.113.0/24]
  secretName: export-credentials
---
apiVersion: keyward.dev/v1alpha1
kind: APIKey
metadata: {name: rotated}
spec:
  application: acme-dashboard
  scopes: [device-full]
---
apiVersion: keyward.dev/v1alpha1
kind: APIKey
metadata: {name: revoked}
spec:
  application: acme-dashboard
  scopes: [device-downlinks]
`

// newObjects is the key created after the upgrade.
const newObjects = `
apiVersion: keyward.dev/v1alpha1
kind: APIKey
metadata: {name: after-upgrade}
spec:
  application: acme-dashboard
  scopes: [device-full]
`

// calls are, per APIKey, a request its scopes and source ranges allow.
var calls = map[string]call{
	"downlinks":     {method: "POST", path: "/integration/device/sendmsg", clientIP: officeIP},
	"export":        {method: "GET", path: "/integration/export/uplinks", clientIP: officeIP},
	"rotated":       {method: "POST", path: "/integration/device/clearmsgs", clientIP: officeIP},
	"early":         {method: "PUT", path: "/integration/device/onboard/0004A30B001C0530", clientIP: officeIP},
	"revoked":       {method: "POST", path: "/integration/device/sendmsg", clientIP: officeIP},
	"after-upgrade": {method: "DELETE", path: "/integration/device/0004A30B001C0530", clientIP: officeIP},
}

var oldKeys = []string{"downlinks", "export", "rotated", "revoked", "early"}

// issued is what an APIKey became: its plaintext and where it lives.
type issued struct {
	plaintext, keyID string
	digest           keys.Digest
	uid              types.UID // the APIKey's
	deliveryName     string
	deliveryUID      types.UID
}

// scenario is one upgrade, step by step.
type scenario struct {
	t          *testing.T
	ctx        context.Context
	ns         string
	kubeconfig string

	oldManager, oldVerifierProcess *process
	oldVerifier, newVerifier       verifierReplica
	// keys are the APIKeys' current keys; previous, the keys their
	// rotations replaced, in their overlap.
	keys, previous map[string]*issued
}

// with returns the scenario reporting to t: a subtest's.
func (s *scenario) with(t *testing.T) *scenario {
	c := *s
	c.t = t
	return &c
}

// TestUpgrade: objects created by the previous release keep working when
// the new release replaces it, with old and new verifier replicas
// answering together; the new manager adopts the old records without
// minting again, and revocation, new keys and rotation work across the
// two verifiers.
func TestUpgrade(t *testing.T) {
	env.Need(t)
	start := time.Now()
	s := &scenario{t: t, ctx: context.Background(), ns: env.Namespace(t), keys: map[string]*issued{}, previous: map[string]*issued{}}
	s.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.WriteKubeconfig(s.kubeconfig); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(s.ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ops}}); err != nil {
		t.Fatal(err)
	}

	s.runOldRelease()
	s.createWithOldRelease()
	s.installNewCRDs()
	s.startNewVerifier()
	s.replaceManager()
	s.checkAdopted()
	s.createAfterUpgrade()
	s.revokeOldKey()
	t.Run("rotate a key created before its Application", func(t *testing.T) { s.with(t).rotateOldKey("early") })
	t.Run("rotate a key created after its Application", func(t *testing.T) { s.with(t).rotateOldKey("rotated") })
	s.retireOldVerifier()
	t.Logf("upgrade from %s: %s", old.Commit, time.Since(start).Round(100*time.Millisecond))
}

// runOldRelease starts the old manager, its webhooks registered as its
// manifests declare them, and one old verifier replica.
func (s *scenario) runOldRelease() {
	t := s.t
	webhookAddr, probe := freeAddr(t), freeAddr(t)
	manifests, err := os.ReadFile(old.Webhooks)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyWebhookConfigurations(s.ctx, env.Client, manifests, portNumber(t, webhookAddr)); err != nil {
		t.Fatal(err)
	}
	s.oldManager = startProcess(t, "old manager", old.Binary, "manager",
		"--kubeconfig", s.kubeconfig, "--namespace", ops,
		"--metrics-bind-address", "0", "--health-probe-bind-address", probe,
		"--webhook-host", "127.0.0.1", "--webhook-port", port(webhookAddr),
		"--webhook-cert-dir", t.TempDir(), "--webhook-extra-dns-names", "localhost")
	// Ready once the webhook server serves and its CA is injected.
	s.oldManager.waitReady(t, "http://"+probe+"/readyz")

	listen, vprobe := freeAddr(t), freeAddr(t)
	s.oldVerifierProcess = startProcess(t, "old verifier", old.Binary, "verifier",
		"--kubeconfig", s.kubeconfig, "--namespace", ops,
		"--listen", listen, "--health-probe-bind-address", vprobe,
		"--trusted-proxies", trustedProxy, "--shutdown-delay", "0s")
	s.oldVerifierProcess.waitReady(t, "http://"+vprobe+"/readyz")
	s.oldVerifier = verifierReplica{name: "old", base: "http://" + listen}
}

// createWithOldRelease applies the objects through the old webhooks and
// waits until the old manager has issued every key and the old verifier
// accepts it. Its delivery Secrets are immutable.
func (s *scenario) createWithOldRelease() {
	s.apply(oldObjects)
	for _, name := range oldKeys {
		k := s.waitIssued(name)
		s.keys[name] = k
		d := s.delivery(k)
		if d.Immutable == nil || !*d.Immutable {
			s.t.Errorf("the old release's delivery Secret %s is not immutable: this test's premise is wrong", d.Name)
		}
	}
	s.expectAll(s.oldVerifier)
}

// installNewCRDs applies the new release's CRDs over the old ones.
func (s *scenario) installNewCRDs() {
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(env.Root, "config", "crd", "bases")}, ErrorIfPathMissing: true,
	}); err != nil {
		s.t.Fatalf("installing the new CRDs: %v", err)
	}
}

// startNewVerifier starts a new verifier replica beside the old one, while
// the records are still as the old manager wrote them: both accept every
// key.
func (s *scenario) startNewVerifier() {
	v := testenv.StartVerifier(s.t, env.Config, verifier.Options{
		Namespace: ops, TrustedProxies: []string{trustedProxy},
	})
	testenv.Eventually(s.t, 60*time.Second, func() error { return ready("http://" + v.ProbeAddr + "/readyz") })
	s.newVerifier = verifierReplica{name: "new", base: "http://" + v.Addr}
	s.expectAll(s.oldVerifier, s.newVerifier)
}

// replaceManager stops the old manager (SIGTERM, as a rollout does),
// applies the new webhook configurations and starts the new manager, which
// takes over the old one's webhook certificate. It returns once the new
// webhooks answer and the API server serves the new schema: a strict
// dry-run of an APIKey with spec.rotation, a field the old CRD lacks.
func (s *scenario) replaceManager() {
	t := s.t
	ca := s.webhookCA()
	s.oldManager.stop(t)
	webhookAddr, probe := freeAddr(t), freeAddr(t)
	manifests, err := os.ReadFile(filepath.Join(env.Root, "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := applyWebhookConfigurations(s.ctx, env.Client, manifests, portNumber(t, webhookAddr)); err != nil {
		t.Fatal(err)
	}
	testenv.StartManager(t, env.Config, manager.Options{
		Namespace: ops, MetricsAddr: "0", ProbeAddr: probe,
		Webhooks: &manager.WebhookOptions{
			Host: "127.0.0.1", Port: portNumber(t, webhookAddr), CertDir: t.TempDir(),
			CertMode: manager.CertModeSelfManaged, ExtraDNSNames: []string{"localhost"},
		},
	})
	testenv.Eventually(t, 60*time.Second, func() error { return ready("http://" + probe + "/readyz") })
	if !bytes.Equal(s.webhookCA(), ca) {
		t.Errorf("the new manager replaced the old release's webhook CA instead of taking it over")
	}

	objs, err := parseObjects(s.ns, `
apiVersion: keyward.dev/v1alpha1
kind: APIKey
metadata: {name: schema-probe}
spec:
  application: acme-dashboard
  scopes: [device-full]
  rotation: {every: 2160h, overlap: 24h}
`)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		return env.Client.Create(s.ctx, objs[0].DeepCopy(), client.DryRunAll, client.FieldValidation("Strict"))
	})
}

// webhookCA is the CA of the self-managed webhook certificate.
func (s *scenario) webhookCA() []byte {
	c := &corev1.Secret{}
	if err := env.Client.Get(s.ctx, client.ObjectKey{Namespace: ops, Name: webhook.DefaultCertSecretName}, c); err != nil {
		s.t.Fatalf("the webhook certificate's Secret: %v", err)
	}
	return c.Data["ca.crt"]
}

// checkAdopted waits until the new manager has bound and relabelled every
// old record (the parents' UIDs, keyward.dev/key-group-ref), and checks it
// minted nothing: the digest, the delivery Secret and its api-key are the
// old release's. Both verifiers still accept every key.
func (s *scenario) checkAdopted() {
	t := s.t
	ref := record.GroupRef(s.ns, group)
	for _, name := range oldKeys {
		k := s.keys[name]
		var rec *record.Record
		testenv.Eventually(t, 30*time.Second, func() error {
			h := s.hashed(k)
			if got := h.Labels[record.LabelKeyGroupRef]; got != ref {
				return fmt.Errorf("hashed Secret of %s: label %s is %q, want %q", name, record.LabelKeyGroupRef, got, ref)
			}
			var err error
			if rec, err = record.Decode(h.Data); err != nil {
				return err
			}
			if rec.ApplicationUID == "" || rec.KeyGroupUID == "" {
				return fmt.Errorf("hashed Secret of %s: not bound to its parents yet", name)
			}
			return nil
		})
		if rec.Digest != k.digest || rec.KeyID != k.keyID {
			t.Errorf("%s: the new manager replaced the key: record %s, was %s", name, rec.KeyID, k.keyID)
		}
		d := s.delivery(k)
		if d.UID != k.deliveryUID || string(d.Data[record.DeliveryAPIKey]) != k.plaintext {
			t.Errorf("%s: the new manager rewrote the delivery Secret %s", name, d.Name)
		}
	}
	s.expectAll(s.oldVerifier, s.newVerifier)
}

// createAfterUpgrade: a key created through the new webhooks and issued
// by the new manager is accepted by both verifier replicas.
func (s *scenario) createAfterUpgrade() {
	s.apply(newObjects)
	k := s.waitIssued("after-upgrade")
	s.keys["after-upgrade"] = k
	for _, v := range []verifierReplica{s.oldVerifier, s.newVerifier} {
		s.expect(v, "after-upgrade", k.plaintext, answer{code: 200, keyID: k.keyID})
	}
}

// revokeOldKey: revoking a key the old release issued stops it at both
// replicas.
func (s *scenario) revokeOldKey() {
	s.patchKey("revoked", func(k *keywardv1alpha1.APIKey) { k.Spec.Revoked = true })
	for _, v := range []verifierReplica{s.oldVerifier, s.newVerifier} {
		s.expect(v, "revoked", s.keys["revoked"].plaintext, answer{code: 401, reason: "revoked"})
	}
}

// rotateOldKey rotates a key the old release issued, on request. The
// rotation replaces its immutable delivery Secret with a mutable one
// holding the successor. During the overlap the new verifier accepts both
// keys; the old one, which does not read previous-digest, accepts the
// current key and no longer knows the previous one.
func (s *scenario) rotateOldKey(name string) {
	t := s.t
	was := s.keys[name]
	s.patchKey(name, func(k *keywardv1alpha1.APIKey) {
		if k.Annotations == nil {
			k.Annotations = map[string]string{}
		}
		k.Annotations[keywardv1alpha1.AnnotationRotate] = "upgrade-" + time.Now().UTC().Format(time.RFC3339)
	})
	var now *issued
	testenv.Eventually(t, 30*time.Second, func() error {
		d, err := s.getDelivery(was)
		if err != nil {
			return err
		}
		if p := string(d.Data[record.DeliveryAPIKey]); p == was.plaintext || d.Data[controllers.DeliveryNextKey] != nil {
			why, refused := s.rotation(name)
			if refused {
				t.Fatalf("APIKey %s: the rotation was refused: %s", name, why)
			}
			return fmt.Errorf("delivery Secret %s: the successor is not promoted yet; %s", d.Name, why)
		}
		if d.UID == was.deliveryUID || (d.Immutable != nil && *d.Immutable) {
			return fmt.Errorf("delivery Secret %s: not replaced by a mutable one", d.Name)
		}
		k, err := keys.Parse(string(d.Data[record.DeliveryAPIKey]))
		if err != nil {
			return err
		}
		now = &issued{plaintext: k.Plaintext(), keyID: k.ID(), digest: k.Digest(), uid: was.uid, deliveryName: was.deliveryName, deliveryUID: d.UID}
		return nil
	})
	rec, err := record.Decode(s.hashed(was).Data)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Digest != now.digest || rec.Previous == nil || rec.Previous.Digest != was.digest {
		t.Fatalf("the hashed record of %s does not hold the successor as current and the old key as previous", name)
	}
	s.keys[name], s.previous[name] = now, was
	s.expect(s.newVerifier, name, now.plaintext, answer{code: 200, keyID: now.keyID})
	s.expect(s.newVerifier, name, was.plaintext, answer{code: 200, keyID: was.keyID})
	s.expect(s.oldVerifier, name, now.plaintext, answer{code: 200, keyID: now.keyID})
	s.expect(s.oldVerifier, name, was.plaintext, answer{code: 401, reason: "unknown"})
}

// rotation describes the APIKey's Rotated condition, for a failure, and
// whether it says the rotation was refused.
func (s *scenario) rotation(name string) (string, bool) {
	k := &keywardv1alpha1.APIKey{}
	if err := env.Client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: name}, k); err != nil {
		return err.Error(), false
	}
	c := meta.FindStatusCondition(k.Status.Conditions, keywardv1alpha1.ConditionRotated)
	if c == nil {
		return "no Rotated condition yet", false
	}
	refused := c.Status == metav1.ConditionFalse &&
		(c.Reason == controllers.ReasonRotationGrantRevoked || c.Reason == controllers.ReasonRotationSecretConflict)
	return fmt.Sprintf("Rotated=%s %s: %s", c.Status, c.Reason, c.Message), refused
}

// retireOldVerifier stops the old replica, as the rollout's last step; the
// new one answers as before, the previous keys of rotations included.
func (s *scenario) retireOldVerifier() {
	s.oldVerifierProcess.stop(s.t)
	for name, k := range s.keys {
		want := answer{code: 200, keyID: k.keyID}
		if name == "revoked" {
			want = answer{code: 401, reason: "revoked"}
		}
		s.expect(s.newVerifier, name, k.plaintext, want)
	}
	for name, k := range s.previous {
		s.expect(s.newVerifier, name, k.plaintext, answer{code: 200, keyID: k.keyID})
	}
}

// expectAll checks that every old key is accepted, and the export key
// refused from outside its source ranges, by each replica.
func (s *scenario) expectAll(replicas ...verifierReplica) {
	for _, v := range replicas {
		for _, name := range oldKeys {
			k := s.keys[name]
			s.expect(v, name, k.plaintext, answer{code: 200, keyID: k.keyID})
		}
		c := calls["export"]
		c.clientIP = elsewhere
		s.expectCall(v, c, s.keys["export"].plaintext, answer{code: 403, reason: "source"})
	}
}

// expect waits until v answers the APIKey name's call with key as want.
func (s *scenario) expect(v verifierReplica, name, key string, want answer) {
	s.t.Helper()
	s.expectCall(v, calls[name], key, want)
}

func (s *scenario) expectCall(v verifierReplica, c call, key string, want answer) {
	s.t.Helper()
	testenv.Eventually(s.t, 20*time.Second, func() error {
		got, err := v.ask(s.ns, group, c, key)
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s verifier, %s %s with key %s: got %v, want %v", v.name, c.method, c.path, idOf(key), got, want)
		}
		return nil
	})
}

// idOf names a key in a failure message by its public ID only.
func idOf(plaintext string) string {
	k, err := keys.Parse(plaintext)
	if err != nil {
		return "(malformed)"
	}
	return k.ID()
}

// apply creates the objects of docs in the test's namespace, parents
// first, retrying while the webhook endpoint is not reachable yet.
func (s *scenario) apply(docs string) {
	objs, err := parseObjects(s.ns, docs)
	if err != nil {
		s.t.Fatal(err)
	}
	for _, u := range objs {
		testenv.Eventually(s.t, 30*time.Second, func() error { return env.Client.Create(s.ctx, u.DeepCopy()) })
	}
}

// waitIssued waits until the APIKey name is Active with its plaintext
// delivered, and returns it.
func (s *scenario) waitIssued(name string) *issued {
	var k *issued
	testenv.Eventually(s.t, 30*time.Second, func() error {
		key := &keywardv1alpha1.APIKey{}
		if err := env.Client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: name}, key); err != nil {
			return err
		}
		if key.Status.Phase != keywardv1alpha1.APIKeyActive {
			return fmt.Errorf("APIKey %s is %q, not Active", name, key.Status.Phase)
		}
		k = &issued{uid: key.UID, deliveryName: key.DeliverySecretName()}
		d, err := s.getDelivery(k)
		if err != nil {
			return err
		}
		p, err := keys.Parse(string(d.Data[record.DeliveryAPIKey]))
		if err != nil {
			return fmt.Errorf("delivery Secret %s: %w", d.Name, err)
		}
		k.plaintext, k.keyID, k.digest, k.deliveryUID = p.Plaintext(), p.ID(), p.Digest(), d.UID
		return nil
	})
	rec, err := record.Decode(s.hashed(k).Data)
	if err != nil {
		s.t.Fatal(err)
	}
	if rec.Digest != k.digest {
		s.t.Fatalf("APIKey %s: the hashed record's digest is not the delivered key's", name)
	}
	return k
}

func (s *scenario) getDelivery(k *issued) (*corev1.Secret, error) {
	d := &corev1.Secret{}
	return d, env.Client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: k.deliveryName}, d)
}

func (s *scenario) delivery(k *issued) *corev1.Secret {
	d, err := s.getDelivery(k)
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

func (s *scenario) hashed(k *issued) *corev1.Secret {
	h := &corev1.Secret{}
	if err := env.Client.Get(s.ctx, client.ObjectKey{Namespace: ops, Name: record.SecretName(string(k.uid))}, h); err != nil {
		s.t.Fatal(err)
	}
	return h
}

// patchKey merge-patches the APIKey name with change, through the new
// webhooks.
func (s *scenario) patchKey(name string, change func(*keywardv1alpha1.APIKey)) {
	k := &keywardv1alpha1.APIKey{}
	if err := env.Client.Get(s.ctx, client.ObjectKey{Namespace: s.ns, Name: name}, k); err != nil {
		s.t.Fatal(err)
	}
	patch := client.MergeFrom(k.DeepCopy())
	change(k)
	if err := env.Client.Patch(s.ctx, k, patch); err != nil {
		s.t.Fatalf("patching APIKey %s: %v", name, err)
	}
}
