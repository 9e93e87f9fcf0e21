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

package controllers

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
	"github.com/keyward/keyward/internal/record"
	"github.com/keyward/keyward/test/testgen"
)

// TestDecideBinding: a key is decided against the parents it is bound to.
// A parent of the same name with another UID, or an Application that now
// names another KeyGroup than the key's record, rejects it; a record
// without UIDs (written before binding) is judged by the group it names.
func TestDecideBinding(t *testing.T) {
	t.Parallel()
	group := testgen.KeyGroup("ns", "staging")
	group.UID = "group-1"
	app := testgen.Application("ns", "acme", "staging")
	app.UID = "app-1"
	app.Status.Phase = keywardv1alpha1.ApplicationActive
	production := testgen.Application("ns", "acme", "production")
	production.UID = "app-2"
	production.Status.Phase = keywardv1alpha1.ApplicationActive
	annotated := func(appUID, groupUID string) *keywardv1alpha1.APIKey {
		k := testgen.APIKey("ns", "k", "acme")
		k.Annotations[keywardv1alpha1.AnnotationApplicationUID] = appUID
		k.Annotations[keywardv1alpha1.AnnotationKeyGroupUID] = groupUID
		return k
	}
	hashed := func(groupName, appUID, groupUID string) *corev1.Secret {
		r := record.Record{Namespace: "ns", KeyGroup: groupName, Application: "acme", APIKey: "k", KeyID: "kt_abcd", State: record.StateActive,
			ApplicationUID: appUID, KeyGroupUID: groupUID}
		return &corev1.Secret{Data: r.SecretData()}
	}
	tests := []struct {
		name   string
		key    *keywardv1alpha1.APIKey
		hashed *corev1.Secret
		app    *keywardv1alpha1.Application
		phase  keywardv1alpha1.APIKeyPhase
		reason string
	}{
		{name: "bound to its parents", key: annotated("app-1", "group-1"), app: app, phase: keywardv1alpha1.APIKeyActive, reason: ReasonActive},
		{name: "not bound yet", key: testgen.APIKey("ns", "k", "acme"), app: app, phase: keywardv1alpha1.APIKeyActive, reason: ReasonActive},
		{name: "application replaced before mint", key: annotated("app-0", "group-1"), app: app, phase: keywardv1alpha1.APIKeyRejected, reason: ReasonApplicationReplaced},
		{name: "group replaced before mint", key: annotated("app-1", "group-0"), app: app, phase: keywardv1alpha1.APIKeyRejected, reason: ReasonKeyGroupReplaced},
		{name: "minted, bound to its parents", key: testgen.APIKey("ns", "k", "acme"), hashed: hashed("staging", "app-1", "group-1"), app: app, phase: keywardv1alpha1.APIKeyActive, reason: ReasonActive},
		{name: "minted, application replaced", key: testgen.APIKey("ns", "k", "acme"), hashed: hashed("staging", "app-1", "group-1"), app: production, phase: keywardv1alpha1.APIKeyRejected, reason: ReasonApplicationReplaced},
		{name: "minted, group replaced", key: testgen.APIKey("ns", "k", "acme"), hashed: hashed("staging", "app-1", "group-0"), app: app, phase: keywardv1alpha1.APIKeyRejected, reason: ReasonKeyGroupReplaced},
		{name: "minted before binding, same parents", key: testgen.APIKey("ns", "k", "acme"), hashed: hashed("staging", "", ""), app: app, phase: keywardv1alpha1.APIKeyActive, reason: ReasonActive},
		{name: "minted before binding, application now in another group", key: testgen.APIKey("ns", "k", "acme"), hashed: hashed("staging", "", ""), app: production, phase: keywardv1alpha1.APIKeyRejected, reason: ReasonApplicationReplaced},
		{name: "annotations do not speak for a minted key", key: annotated("app-0", "group-0"), hashed: hashed("staging", "app-1", "group-1"), app: app, phase: keywardv1alpha1.APIKeyActive, reason: ReasonActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &apiKeyScope{key: tt.key, now: time.Now(), app: tt.app, group: group, hashed: tt.hashed}
			s.bound = boundParents(s.key, s.hashed)
			if err := (&APIKeyReconciler{}).decide(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			if s.phase != tt.phase || s.reason != tt.reason {
				t.Errorf("decided %s (%s: %s), want %s (%s)", s.phase, s.reason, s.message, tt.phase, tt.reason)
			}
		})
	}
}
