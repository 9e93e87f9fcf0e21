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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/keys"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testgen"
)

// noPlaintext fails the test if the plaintext shows in an error or on
// stderr: only get-key's stdout may hold it.
func noPlaintext(t *testing.T, r result, plaintext string) {
	t.Helper()
	body := plaintext[len(plaintext)-keys.RandomLength:]
	if strings.Contains(r.errOut, body) || (r.err != nil && strings.Contains(r.err.Error(), body)) {
		t.Errorf("the key shows in an error or on stderr: %v / %q", r.err, r.errOut)
	}
}

func TestGetKey(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, ns)
	k := issue(t, ns, "acme-key")[0]
	p := newPlugin(t)

	r := p.ok("", "get-key", "acme-key", "-n", ns)
	if r.out != k.plaintext+"\n" {
		t.Fatalf("get-key printed %d bytes, not the delivered key", len(r.out))
	}
	noPlaintext(t, r, k.plaintext)
	if !strings.Contains(r.errOut, "secret/acme-key-key") {
		t.Errorf("get-key does not say the key is still in its Secret: %q", r.errOut)
	}

	r = p.ok("", "get-key", "acme-key", "-n", ns, "--forget")
	if r.out != k.plaintext+"\n" {
		t.Fatalf("get-key --forget printed %d bytes, not the delivered key", len(r.out))
	}
	noPlaintext(t, r, k.plaintext)
	err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "acme-key-key"}, &corev1.Secret{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("the delivery Secret is still there after --forget: %v", err)
	}
	if got := getKey(t, ns, "acme-key"); got.Status.Phase != keywardv1alpha1.APIKeyActive {
		t.Errorf("the key is %s after --forget, want Active", got.Status.Phase)
	}
	var hashed corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ops, Name: record.SecretName(string(k.key.UID))}, &hashed); err != nil {
		t.Errorf("the hashed Secret is gone after --forget: %v", err)
	}

	r = p.run("", "get-key", "acme-key", "-n", ns)
	if r.err == nil || !strings.Contains(r.err.Error(), "cannot be read again") || r.out != "" {
		t.Errorf("get-key after --forget: %v, stdout %q", r.err, r.out)
	}
	noPlaintext(t, r, k.plaintext)
}

// TestGetKeyRefuses: get-key prints only a Secret its APIKey controls, and
// --forget never deletes a Secret that a rotation is rewriting. No manager
// runs here: the objects are written as keyward would.
func TestGetKeyRefuses(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ns := env.Namespace(t)
	ctx := context.Background()
	p := newPlugin(t)
	minted, err := keys.Generate("kt")
	if err != nil {
		t.Fatal(err)
	}

	pending := testgen.APIKey(ns, "pending", "acme")
	create(t, pending)
	r := p.run("", "get-key", "pending", "-n", ns)
	if r.err == nil || !strings.Contains(r.err.Error(), "has no key yet") {
		t.Errorf("get-key of a key not issued: %v", r.err)
	}

	foreign := testgen.APIKey(ns, "foreign", "acme")
	create(t, foreign, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "foreign-key"},
		Data:       map[string][]byte{record.DeliveryAPIKey: []byte(minted.Plaintext())},
	})
	r = p.run("", "get-key", "foreign", "-n", ns)
	if r.err == nil || !strings.Contains(r.err.Error(), "is not the delivery Secret") || r.out != "" {
		t.Errorf("get-key of a Secret the APIKey does not control: %v, stdout %q", r.err, r.out)
	}
	noPlaintext(t, r, minted.Plaintext())

	rotating := testgen.APIKey(ns, "rotating", "acme")
	create(t, rotating)
	next, err := keys.Generate("kt")
	if err != nil {
		t.Fatal(err)
	}
	// The successor committed, not yet delivered: status names it, and
	// the key it replaces as previous.
	rotating.Status.Phase, rotating.Status.KeyID = keywardv1alpha1.APIKeyActive, next.ID()
	rotating.Status.Rotation = &keywardv1alpha1.APIKeyRotationStatus{PreviousKeyID: minted.ID(), PreviousKeyExpiresAt: at(time.Now().Add(time.Hour))}
	if err := env.Client.Status().Update(ctx, rotating); err != nil {
		t.Fatal(err)
	}
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rotating-key", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: keywardv1alpha1.GroupVersion.String(), Kind: "APIKey", Name: rotating.Name, UID: rotating.UID, Controller: ptr.To(true),
		}}},
		Data: map[string][]byte{record.DeliveryAPIKey: []byte(minted.Plaintext()), deliveryAPIKeyNext: []byte(next.Plaintext())},
	})
	r = p.run("", "get-key", "rotating", "-n", ns, "--forget")
	if !errors.Is(r.err, errRotating) || r.out != "" {
		t.Errorf("get-key --forget during a rotation: %v, stdout %q", r.err, r.out)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "rotating-key"}, &corev1.Secret{}); err != nil {
		t.Errorf("the delivery Secret of a rotating key is gone: %v", err)
	}
	r = p.ok("", "get-key", "rotating", "-n", ns)
	if r.out != minted.Plaintext()+"\n" {
		t.Errorf("get-key during a rotation printed %d bytes, not api-key", len(r.out))
	}

	// The key a rotation replaced, written back into api-key once its
	// overlap ended: a dead key, never handed over.
	rolledBack := testgen.APIKey(ns, "rolled-back", "acme")
	create(t, rolledBack)
	rolledBack.Status.Phase, rolledBack.Status.KeyID = keywardv1alpha1.APIKeyActive, next.ID()
	rolledBack.Status.Rotation = &keywardv1alpha1.APIKeyRotationStatus{PreviousKeyID: minted.ID(), PreviousKeyExpiresAt: at(time.Now().Add(-time.Minute))}
	if err := env.Client.Status().Update(ctx, rolledBack); err != nil {
		t.Fatal(err)
	}
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rolled-back-key", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: keywardv1alpha1.GroupVersion.String(), Kind: "APIKey", Name: rolledBack.Name, UID: rolledBack.UID, Controller: ptr.To(true),
		}}},
		Data: map[string][]byte{record.DeliveryAPIKey: []byte(minted.Plaintext())},
	})
	r = p.run("", "get-key", "rolled-back", "-n", ns)
	if r.err == nil || !strings.Contains(r.err.Error(), "stopped working at") || r.out != "" {
		t.Errorf("get-key of a replaced key written back after its overlap: %v, stdout %q", r.err, r.out)
	}
	noPlaintext(t, r, minted.Plaintext())

	// A key that is not the APIKey's, written into its own Secret by
	// someone who may write Secrets: never handed over as its key.
	for _, tt := range []struct{ name, keyID, want string }{
		{"substituted", minted.ID(), "not the key of apikey substituted"},
		{"planted", "", "keyward did not issue"},
	} {
		k := testgen.APIKey(ns, tt.name, "acme")
		create(t, k)
		if tt.keyID != "" {
			k.Status.Phase, k.Status.KeyID = keywardv1alpha1.APIKeyActive, tt.keyID
			if err := env.Client.Status().Update(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		create(t, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tt.name + "-key", OwnerReferences: []metav1.OwnerReference{{
				APIVersion: keywardv1alpha1.GroupVersion.String(), Kind: "APIKey", Name: k.Name, UID: k.UID, Controller: ptr.To(true),
			}}},
			Data: map[string][]byte{record.DeliveryAPIKey: []byte(next.Plaintext())},
		})
		r = p.run("", "get-key", tt.name, "-n", ns)
		if r.err == nil || !strings.Contains(r.err.Error(), tt.want) || r.out != "" {
			t.Errorf("get-key of a key %s: %v, stdout %q", tt.name, r.err, r.out)
		}
		noPlaintext(t, r, next.Plaintext())
	}

	// Something in api-key-next that is no key was not staged by a
	// rotation: --forget goes ahead. A key that does not work says so.
	junk := testgen.APIKey(ns, "junk", "acme")
	create(t, junk)
	junk.Status.Phase, junk.Status.KeyID = keywardv1alpha1.APIKeyRevoked, minted.ID()
	if err := env.Client.Status().Update(ctx, junk); err != nil {
		t.Fatal(err)
	}
	create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "junk-key", OwnerReferences: []metav1.OwnerReference{{
			APIVersion: keywardv1alpha1.GroupVersion.String(), Kind: "APIKey", Name: junk.Name, UID: junk.UID, Controller: ptr.To(true),
		}}},
		Data: map[string][]byte{record.DeliveryAPIKey: []byte(minted.Plaintext()), deliveryAPIKeyNext: []byte("not a key")},
	})
	r = p.ok("", "get-key", "junk", "-n", ns, "--forget")
	if r.out != minted.Plaintext()+"\n" || !strings.Contains(r.errOut, "apikey junk is Revoked: this key does not work now") {
		t.Errorf("get-key --forget of a revoked key with junk in api-key-next: stdout %d bytes, stderr %q", len(r.out), r.errOut)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "junk-key"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Errorf("the delivery Secret was not deleted: %v", err)
	}
}

func TestRotate(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ns := env.Namespace(t)
	create(t, testgen.APIKey(ns, "acme-key", "acme"))
	at := time.Date(2027, 3, 1, 12, 0, 0, 123456789, time.UTC)
	p := plugin{t: t, now: func() time.Time { return at }}

	for _, want := range []string{"2027-03-01T12:00:00.123456789Z", "2027-03-01T12:00:00.123456790Z"} {
		r := p.ok("", "rotate", "acme-key", "-n", ns)
		if !strings.Contains(r.out, "keyward.dev/rotate="+want) {
			t.Errorf("rotate says %q", r.out)
		}
		if got := getKey(t, ns, "acme-key").Annotations[keywardv1alpha1.AnnotationRotate]; got != want {
			t.Errorf("keyward.dev/rotate = %q, want %q", got, want)
		}
		at = at.Add(time.Nanosecond)
	}
	if r := p.run("", "rotate", "missing", "-n", ns); r.err == nil || !strings.Contains(r.err.Error(), "not found") {
		t.Errorf("rotate of a missing key: %v", r.err)
	}
	if r := p.ok("", "rotate", "acme-key", "-n", ns); !strings.Contains(r.errOut, "has no key yet; nothing rotates") {
		t.Errorf("rotate of a key not issued yet says nothing of it: stderr %q", r.errOut)
	}

	// A key in a final phase never rotates: the request is refused as such.
	revoked := getKey(t, ns, "acme-key")
	revoked.Status.Phase, revoked.Status.KeyID = keywardv1alpha1.APIKeyRevoked, "kt_abcd"
	if err := env.Client.Status().Update(context.Background(), revoked); err != nil {
		t.Fatal(err)
	}
	if r := p.run("", "rotate", "acme-key", "-n", ns); r.err == nil || !strings.Contains(r.err.Error(), "is Revoked, which is final: it will not rotate") || r.out != "" {
		t.Errorf("rotate of a revoked key: %v, stdout %q", r.err, r.out)
	}
}

func TestRevokeByName(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, ns)
	issue(t, ns, "acme-key", "other-key")
	p := newPlugin(t)

	r := p.ok("", "revoke", "acme-key", "-n", ns)
	if r.out != "apikey.keyward.dev/acme-key revoked\n" {
		t.Errorf("revoke says %q", r.out)
	}
	if !getKey(t, ns, "acme-key").Spec.Revoked {
		t.Fatal("spec.revoked is not set")
	}
	waitPhase(t, ns, "acme-key", keywardv1alpha1.APIKeyRevoked)
	if k := getKey(t, ns, "other-key"); k.Spec.Revoked || k.Status.Phase != keywardv1alpha1.APIKeyActive {
		t.Errorf("the other key was touched: revoked %v, phase %s", k.Spec.Revoked, k.Status.Phase)
	}
	if r := p.run("", "revoke", "-n", ns); r.err == nil {
		t.Error("revoke with no name and no --key succeeds")
	}
	if r := p.run("", "revoke", "--key", "kt_x", "-n", ns); !errors.Is(r.err, errKeyFlag) {
		t.Errorf("revoke --key with a value on the command line: %v", r.err)
	}
}

// TestIdentifyAndRevokeByKey is the incident: a key's plaintext on stdin is
// identified, then its APIKey, and only it, revoked.
func TestIdentifyAndRevokeByKey(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, ns)
	ks := issue(t, ns, "acme-key", "other-key")
	leaked := ks[0]
	p := newPlugin(t)

	r := p.ok(leaked.plaintext+"\n", "identify", "--operator-namespace", ops)
	noPlaintext(t, r, leaked.plaintext)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAMESPACE APIKEY APPLICATION KEYGROUP KEY-ID GENERATION PHASE LAST-USED" {
		t.Fatalf("identify table:\n%s", r.out)
	}
	if got, want := strings.Fields(lines[1]), []string{ns, "acme-key", "acme", "things", leaked.key.Status.KeyID, "current", "Active", "<never>"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("identify row = %v, want %v", got, want)
	}

	var id identity
	r = p.ok(leaked.plaintext, "identify", "--operator-namespace", ops, "-o", "json")
	if err := json.Unmarshal([]byte(r.out), &id); err != nil {
		t.Fatalf("identify -o json: %v\n%s", err, r.out)
	}
	if id.Namespace != ns || id.APIKey != "acme-key" || id.ExternalID != "70B3D57ED0001234" || id.State != "active" ||
		id.HashedSecret != ops+"/"+record.SecretName(string(leaked.key.UID)) {
		t.Errorf("identify -o json = %+v", id)
	}
	r = p.ok(leaked.plaintext, "identify", "--operator-namespace", ops, "-o", "yaml")
	var fromYAML identity
	if err := yaml.Unmarshal([]byte(r.out), &fromYAML); err != nil || fromYAML.KeyID != leaked.key.Status.KeyID {
		t.Errorf("identify -o yaml: %v\n%s", err, r.out)
	}

	r = p.ok(leaked.plaintext+"\n", "revoke", "--key", "-", "--operator-namespace", ops)
	noPlaintext(t, r, leaked.plaintext)
	if !strings.HasPrefix(r.out, "apikey.keyward.dev/acme-key revoked in namespace "+ns) {
		t.Errorf("revoke --key says %q", r.out)
	}
	waitPhase(t, ns, "acme-key", keywardv1alpha1.APIKeyRevoked)
	if k := getKey(t, ns, "other-key"); k.Spec.Revoked {
		t.Error("revoke --key revoked another key")
	}
	r = p.ok(leaked.plaintext, "identify", "--operator-namespace", ops)
	if !strings.Contains(r.out, "Revoked") {
		t.Errorf("identify after revoke:\n%s", r.out)
	}
}

// TestIdentifyTellsLookAlikes: a string shaped like a key with a wrong
// checksum is refused before anything is asked of the cluster (the server
// here is unreachable), unlike a real key; a real but unknown key is
// looked up and not found.
func TestIdentifyTellsLookAlikes(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	startManager(t, ops, ns)
	real := issue(t, ns, "acme-key")[0].plaintext
	lookAlike := testgen.BadChecksum(real)
	p := newPlugin(t)

	p.ok(real, "identify", "--operator-namespace", ops)
	nowhere := []string{"identify", "--operator-namespace", ops, "--server", "https://127.0.0.1:1"}
	for _, cmd := range [][]string{nowhere, {"revoke", "--key", "-", "--server", "https://127.0.0.1:1"}} {
		r := p.run(lookAlike, cmd...)
		if !errors.Is(r.err, errLookAlike) || r.out != "" {
			t.Errorf("%s of a look-alike: %v, stdout %q", cmd[0], r.err, r.out)
		}
		noPlaintext(t, r, lookAlike)
	}
	if r := p.run(real, nowhere...); r.err == nil || errors.Is(r.err, errLookAlike) {
		t.Errorf("a real key is not looked up: %v", r.err)
	}

	unknown, err := keys.Generate("kt")
	if err != nil {
		t.Fatal(err)
	}
	r := p.run(unknown.Plaintext(), "identify", "--operator-namespace", ops)
	if !errors.Is(r.err, errUnknownKey) || !strings.Contains(r.err.Error(), "1 hashed Secrets read") {
		t.Errorf("identify of a key never issued: %v", r.err)
	}
	noPlaintext(t, r, unknown.Plaintext())

	for in, want := range map[string]error{"": errEmptyInput, "  \n": errEmptyInput, strings.Repeat("x", maxKeyInput+1): errLongInput, "hello": keys.ErrMalformed,
		"hello world": errManyKeys, unknown.Plaintext() + "\n" + unknown.Plaintext() + "\n": errManyKeys} {
		if r := p.run(in, "identify", "--operator-namespace", ops); !errors.Is(r.err, want) {
			t.Errorf("identify of %d bytes: %v, want %v", len(in), r.err, want)
		}
	}
}

// TestIdentifyAndRevokePreviousGeneration: during a rotation's overlap the
// hashed record answers to the previous key too; identify names it as the
// previous generation of its APIKey, and revoke --key revokes the APIKey.
// The record is written as the manager writes it, no manager running.
func TestIdentifyAndRevokePreviousGeneration(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	now := time.Now().Truncate(time.Second)
	current, previous := rotated(t, ops, ns, 7, keywardv1alpha1.APIKeyStatus{LastUsedTime: at(now.Add(-time.Minute)),
		Rotation: &keywardv1alpha1.APIKeyRotationStatus{PreviousKeyLastUsedTime: at(now.Add(-time.Hour))}}, now.Add(24*time.Hour))
	p := plugin{t: t, now: func() time.Time { return now }}

	for _, g := range []struct {
		key                  keys.Key
		generation, lastUsed string
	}{{current, "current", "60s ago"}, {previous, "previous, ends in 24h", "60m ago"}} {
		var id identity
		if err := json.Unmarshal([]byte(p.ok(g.key.Plaintext(), "identify", "--operator-namespace", ops, "-o", "json").out), &id); err != nil {
			t.Fatal(err)
		}
		if id.APIKey != "key-00007" || id.Generation != strings.TrimSuffix(g.generation, ", ends in 24h") || id.KeyID != g.key.ID() {
			t.Errorf("identify of the %s key: %+v", g.generation, id)
		}
		if row := p.ok(g.key.Plaintext(), "identify", "--operator-namespace", ops).out; !strings.Contains(strings.Join(strings.Fields(row), " "), g.generation+" Active "+g.lastUsed) {
			t.Errorf("identify of the %s key:\n%s", g.generation, row)
		}
	}
	r := p.ok(previous.Plaintext(), "revoke", "--key", "-", "--operator-namespace", ops)
	noPlaintext(t, r, previous.Plaintext())
	if !strings.Contains(r.out, "previous generation") || !getKey(t, ns, "key-00007").Spec.Revoked {
		t.Errorf("revoke --key of the previous key: %q, revoked %v", r.out, getKey(t, ns, "key-00007").Spec.Revoked)
	}
}

// TestRevokeByKeyOfAnEndedGeneration: a key a rotation replaced whose
// overlap has ended verifies nowhere. revoke --key of it would only stop the
// APIKey's current key, which was never exposed (an old config found by a
// scanner): it is refused unless --force.
func TestRevokeByKeyOfAnEndedGeneration(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	now := time.Now().Truncate(time.Second)
	_, previous := rotated(t, ops, ns, 8, keywardv1alpha1.APIKeyStatus{
		Rotation: &keywardv1alpha1.APIKeyRotationStatus{PreviousKeyExpiresAt: at(now.Add(-time.Hour))}}, now.Add(-time.Hour))
	p := plugin{t: t, now: func() time.Time { return now }}

	r := p.run(previous.Plaintext(), "revoke", "--key", "-", "--operator-namespace", ops)
	noPlaintext(t, r, previous.Plaintext())
	if r.err == nil || !strings.Contains(r.err.Error(), "stopped working at") || !strings.Contains(r.err.Error(), "--force") || getKey(t, ns, "key-00008").Spec.Revoked {
		t.Fatalf("revoke --key of a replaced key past its overlap: %v, revoked %v", r.err, getKey(t, ns, "key-00008").Spec.Revoked)
	}
	r = p.ok(previous.Plaintext(), "revoke", "--key", "-", "--force", "--operator-namespace", ops)
	noPlaintext(t, r, previous.Plaintext())
	if !getKey(t, ns, "key-00008").Spec.Revoked {
		t.Errorf("revoke --key --force of a replaced key past its overlap did not revoke: %q", r.out)
	}
}

// TestIdentifyWithoutItsAPIKey: a record whose APIKey was deleted, or
// deleted and created again under its name, is named for what it is, and
// revoke --key revokes neither that name's new APIKey nor anything else:
// it points at the break-glass instead.
func TestIdentifyWithoutItsAPIKey(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ops, ns := env.Namespace(t), env.Namespace(t)
	gone, err := keys.Generate("kt")
	if err != nil {
		t.Fatal(err)
	}
	replaced, err := keys.Generate("kt")
	if err != nil {
		t.Fatal(err)
	}
	create(t, hashedRecord(ops, ns, 1, gone), hashedRecord(ops, ns, 2, replaced), testgen.APIKey(ns, "key-00002", "app-002"))
	p := newPlugin(t)

	for _, c := range []struct {
		key   keys.Key
		phase string
	}{{gone, phaseDeleted}, {replaced, phaseReplaced}} {
		var id identity
		if err := json.Unmarshal([]byte(p.ok(c.key.Plaintext(), "identify", "--operator-namespace", ops, "-o", "json").out), &id); err != nil {
			t.Fatal(err)
		}
		if id.Phase != c.phase || id.KeyID != c.key.ID() {
			t.Errorf("identify: %+v, want phase %s", id, c.phase)
		}
		r := p.run(c.key.Plaintext(), "revoke", "--key", "-", "--operator-namespace", ops)
		if r.err == nil || !strings.Contains(r.err.Error(), "break-glass") || r.out != "" {
			t.Errorf("revoke --key of a key whose APIKey is %s: %v, stdout %q", c.phase, r.err, r.out)
		}
		noPlaintext(t, r, c.key.Plaintext())
	}
	if getKey(t, ns, "key-00002").Spec.Revoked {
		t.Error("revoke --key revoked the APIKey created again under the name of the key's")
	}
}

// setStatus writes an APIKey's status as keyward and its verifier would.
func setStatus(t *testing.T, k *keywardv1alpha1.APIKey, s keywardv1alpha1.APIKeyStatus) {
	t.Helper()
	k.Status = s
	if err := env.Client.Status().Update(context.Background(), k); err != nil {
		t.Fatal(err)
	}
}

func at(t time.Time) *metav1.Time { mt := metav1.NewTime(t); return &mt }

// keysWithStatus creates APIKeys in ns (no manager runs: the test writes
// their status) and returns a plugin whose clock is now.
func keysWithStatus(t *testing.T, ns string, statuses map[string]keywardv1alpha1.APIKeyStatus) {
	t.Helper()
	for name, s := range statuses {
		k := testgen.APIKey(ns, name, "acme")
		create(t, k)
		setStatus(t, k, s)
	}
}

func names(t *testing.T, out string) []string {
	t.Helper()
	var l keyList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var n []string
	for _, r := range l.Items {
		n = append(n, r.Name)
	}
	return n
}

func TestExpiring(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ns, other := env.Namespace(t), env.Namespace(t)
	now := time.Now().Truncate(time.Second) // as metav1.Time keeps it
	active, revoked := keywardv1alpha1.APIKeyActive, keywardv1alpha1.APIKeyRevoked
	keysWithStatus(t, ns, map[string]keywardv1alpha1.APIKeyStatus{
		"in-10d":         {Phase: active, KeyID: "kt_aaaa", ExpiresAt: at(now.Add(10 * day))},
		"in-40d":         {Phase: keywardv1alpha1.APIKeyDisabled, KeyID: "kt_bbbb", ExpiresAt: at(now.Add(40 * day))},
		"in-5d-revoked":  {Phase: revoked, KeyID: "kt_cccc", ExpiresAt: at(now.Add(5 * day))},
		"never":          {Phase: active, KeyID: "kt_dddd"},
		"expired-1d-ago": {Phase: keywardv1alpha1.APIKeyExpired, KeyID: "kt_eeee", ExpiresAt: at(now.Add(-day))},
	})
	keysWithStatus(t, other, map[string]keywardv1alpha1.APIKeyStatus{"elsewhere-in-3d": {Phase: active, KeyID: "kt_ffff", ExpiresAt: at(now.Add(3 * day))}})
	p := plugin{t: t, now: func() time.Time { return now }}

	r := p.ok("", "expiring", "-n", ns)
	if lines := strings.Split(strings.TrimSpace(r.out), "\n"); len(lines) != 2 || !strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), ns+" in-10d acme Active kt_aaaa in 10d") {
		t.Errorf("expiring (30d):\n%s", r.out)
	}
	if got := names(t, p.ok("", "expiring", "--within", "45d", "-n", ns, "-o", "json").out); strings.Join(got, ",") != "in-10d,in-40d" {
		t.Errorf("expiring --within 45d = %v", got)
	}
	if got := names(t, p.ok("", "expiring", "--within", "500h", "-A", "-o", "json").out); !contains(got, "elsewhere-in-3d") || !contains(got, "in-10d") || contains(got, "in-40d") {
		t.Errorf("expiring --within 500h -A = %v", got)
	}
	var l keyList
	if err := yaml.Unmarshal([]byte(p.ok("", "expiring", "-n", other, "-o", "yaml").out), &l); err != nil || len(l.Items) != 1 || l.Items[0].KeyID != "kt_ffff" {
		t.Errorf("expiring -o yaml: %v %+v", err, l)
	}
	if r := p.ok("", "expiring", "--within", "1h", "-n", ns); r.out != "" || !strings.Contains(r.errOut, "No keys found") {
		t.Errorf("expiring with nothing to show: %q %q", r.out, r.errOut)
	}
	for _, bad := range []string{"0d", "-3d", "3x", "d"} {
		if r := p.run("", "expiring", "--within", bad, "-n", ns); r.err == nil {
			t.Errorf("expiring --within %s succeeds", bad)
		}
	}
	if r := p.run("", "expiring", "-o", "wide", "-n", ns); r.err == nil {
		t.Error("expiring -o wide succeeds")
	}
}

func TestUnused(t *testing.T) {
	env.Need(t)
	t.Parallel()
	ns := env.Namespace(t)
	now := time.Now().Truncate(time.Second) // as metav1.Time keeps it
	active := keywardv1alpha1.APIKeyActive
	keysWithStatus(t, ns, map[string]keywardv1alpha1.APIKeyStatus{
		"used-100d-ago":    {Phase: active, KeyID: "kt_aaaa", LastUsedTime: at(now.Add(-100 * day))},
		"used-10d-ago":     {Phase: keywardv1alpha1.APIKeyDisabled, KeyID: "kt_bbbb", LastUsedTime: at(now.Add(-10 * day))},
		"never-used":       {Phase: active, KeyID: "kt_cccc"},
		"revoked-200d-ago": {Phase: keywardv1alpha1.APIKeyRevoked, KeyID: "kt_dddd", LastUsedTime: at(now.Add(-200 * day))},
		"previous-used-1d": {Phase: active, KeyID: "kt_eeee", LastUsedTime: at(now.Add(-100 * day)), Rotation: &keywardv1alpha1.APIKeyRotationStatus{PreviousKeyLastUsedTime: at(now.Add(-day))}},
	})
	p := plugin{t: t, now: func() time.Time { return now }}

	r := p.ok("", "unused", "-n", ns)
	if lines := strings.Split(strings.TrimSpace(r.out), "\n"); len(lines) != 2 || !strings.HasPrefix(strings.Join(strings.Fields(lines[1]), " "), ns+" used-100d-ago acme Active kt_aaaa 100d ago") {
		t.Errorf("unused (90d):\n%s", r.out)
	}
	// The key whose previous generation was used a day ago was not listed;
	// 91 days on, it is, as are the key used 10 days ago and the one never
	// used (created now), the oldest activity first.
	p.now = func() time.Time { return now.Add(91 * day) }
	if got := names(t, p.ok("", "unused", "--for", "90d", "-n", ns, "-o", "json").out); strings.Join(got, ",") != "used-100d-ago,used-10d-ago,previous-used-1d,never-used" {
		t.Errorf("unused 91 days on = %v", got)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// rotated creates APIKey key-<i> of application app-<i> in ns, Active,
// after a rotation, with the status st (its key IDs filled in), and its
// hashed record as the manager writes it, the previous key ending at ends.
// It returns the current and the previous key.
func rotated(t *testing.T, ops, ns string, i int, st keywardv1alpha1.APIKeyStatus, ends time.Time) (current, previous keys.Key) {
	t.Helper()
	var err error
	if current, err = keys.Generate("kt"); err != nil {
		t.Fatal(err)
	}
	if previous, err = keys.Generate("kt"); err != nil {
		t.Fatal(err)
	}
	key := testgen.APIKey(ns, fmt.Sprintf("key-%05d", i), fmt.Sprintf("app-%03d", i))
	create(t, key)
	st.Phase, st.KeyID = keywardv1alpha1.APIKeyActive, current.ID()
	if st.Rotation == nil {
		st.Rotation = &keywardv1alpha1.APIKeyRotationStatus{}
	}
	st.Rotation.PreviousKeyID = previous.ID()
	setStatus(t, key, st)
	create(t, hashedRecord(ops, ns, i, current, func(r *record.Record) {
		r.Previous = &record.Previous{Digest: previous.Digest(), KeyID: previous.ID(), EndsAt: ends}
	}))
	pointAt(t, ops, i, key)
	return current, previous
}
