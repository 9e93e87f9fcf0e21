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

package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// APIKeySpec describes one credential.
// +kubebuilder:validation:XValidation:rule="self.application == oldSelf.application",message="field is immutable; create a new APIKey for another application",fieldPath=".application",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="self.scopes == oldSelf.scopes",message="field is immutable; create a new APIKey to change scopes",fieldPath=".scopes",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.revoked) || !oldSelf.revoked || (has(self.revoked) && self.revoked)",message="cannot be set back to false; create a new APIKey instead",fieldPath=".revoked",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.expiresAt) || (has(self.expiresAt) && self.expiresAt <= oldSelf.expiresAt)",message="may move earlier, never later or away; create a new APIKey for a longer lifetime",fieldPath=".expiresAt",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="has(self.secretName) == has(oldSelf.secretName) && (!has(self.secretName) || self.secretName == oldSelf.secretName)",message="field is immutable: the key was delivered to this Secret once; copy the Secret if it must live elsewhere",fieldPath=".secretName",reason=FieldValueForbidden
type APIKeySpec struct {
	// application is the name of the Application, in the same namespace,
	// that holds this key. Immutable.
	// +required
	Application ObjectName `json:"application"`

	// scopes are the names of the KeyGroup's scopes this key is granted.
	// Granting a scope needs the RBAC verb "grant" on scopes.keyward.dev
	// named "<keygroup>.<scope>". Immutable.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=set
	Scopes []ScopeName `json:"scopes"`

	// description says what the key is for. Editable.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// disabled switches the key off (true) and on again (false). A disabled
	// key still counts against maxKeysPerApplication.
	// +optional
	Disabled bool `json:"disabled,omitempty"`

	// revoked, once true, stops the key for good. It can never be set back
	// to false.
	// +optional
	Revoked bool `json:"revoked,omitempty"`

	// expiresAt is when the key stops working, in RFC 3339. It may move
	// earlier, never later. Required when the group sets maxKeyLifetime.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// allowedSourceRanges are the client networks the key may be used from.
	// When set they replace the group's, and must lie within them when the
	// group sets any (a group that narrows its ranges later still bounds
	// the key); when unset the group's apply. Editable.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	AllowedSourceRanges []CIDR `json:"allowedSourceRanges,omitempty"`

	// secretName is the Secret, in this namespace, that receives the key:
	// "api-key" holds the plaintext and "key-id" its public id. Written
	// when the key is issued and rewritten in place only by a rotation.
	// Default "<name>-key". Immutable.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	SecretName string `json:"secretName,omitempty"`

	// rotation, when set, replaces the key on a schedule: a successor is
	// minted every "every", delivered to the same Secret, and the previous
	// key keeps working for "overlap". Editable.
	// +optional
	Rotation *APIKeyRotation `json:"rotation,omitempty"`
}

// APIKeyRotation is a key's rotation schedule.
// +kubebuilder:validation:XValidation:rule="!has(self.overlap) || duration(self.overlap) < duration(self.every)",message="overlap must be shorter than every: at most two keys work at once",fieldPath=".overlap"
type APIKeyRotation struct {
	// every is how long after the current key was minted its successor is:
	// 2160h for 90 days. The manager's --min-rotation-every (default 1h)
	// is the shortest allowed.
	// +required
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",messageExpression="'must be a positive duration in hours, minutes or seconds, such as 2160h (units h, m, s, ms; no d), not ' + self"
	Every metav1.Duration `json:"every,omitzero"`

	// overlap is how long the previous key keeps working after a
	// rotation, for consumers to pick up the new one. Default 24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",messageExpression="'must be a positive duration in hours, minutes or seconds, such as 168h (units h, m, s, ms; no d), not ' + self"
	Overlap *metav1.Duration `json:"overlap,omitempty"`
}

// DefaultRotationOverlap is how long a previous key keeps working when the
// rotation sets no overlap, or the key has no rotation (keyward.dev/rotate).
const DefaultRotationOverlap = 24 * time.Hour

// RotationOverlap is the key's overlap: spec.rotation.overlap, or
// DefaultRotationOverlap.
func (k *APIKey) RotationOverlap() time.Duration {
	if k.Spec.Rotation != nil && k.Spec.Rotation.Overlap != nil {
		return k.Spec.Rotation.Overlap.Duration
	}
	return DefaultRotationOverlap
}

// APIKeyPhase is where an APIKey stands.
// +kubebuilder:validation:Enum=Pending;Active;Disabled;Revoked;Expired;Rejected
type APIKeyPhase string

const (
	// APIKeyPending waits for its application, its group or its turn
	// against the limits.
	APIKeyPending APIKeyPhase = "Pending"
	// APIKeyActive works.
	APIKeyActive APIKeyPhase = "Active"
	// APIKeyDisabled is switched off and can be switched on again.
	APIKeyDisabled APIKeyPhase = "Disabled"
	// APIKeyRevoked was revoked, by itself or with its application.
	// Terminal.
	APIKeyRevoked APIKeyPhase = "Revoked"
	// APIKeyExpired is past its expiresAt. Terminal.
	APIKeyExpired APIKeyPhase = "Expired"
	// APIKeyRejected can never work: over the limit when created, or its
	// group, application or a scope went away. Terminal.
	APIKeyRejected APIKeyPhase = "Rejected"
)

// Terminal reports whether a key in this phase can never work again.
func (p APIKeyPhase) Terminal() bool {
	return p == APIKeyRevoked || p == APIKeyExpired || p == APIKeyRejected
}

// APIKeyStatus is what the controller and the verifier observed of an APIKey.
type APIKeyStatus struct {
	CommonStatus `json:",inline"`

	// phase is Pending, Active, Disabled, Revoked, Expired or Rejected.
	// +optional
	Phase APIKeyPhase `json:"phase,omitempty"`

	// keyID is the key's public, non-secret handle: its prefix and the
	// first 4 characters after it, such as iot_7Hq2.
	// +optional
	KeyID string `json:"keyID,omitempty"`

	// secretName is the Secret the key was delivered to.
	// +optional
	SecretName string `json:"secretName,omitempty"`

	// expiresAt is when the key stops working, if ever.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// lastUsedTime is when the verifier last accepted the current key,
	// written at most once a minute. A rotation moves it to
	// rotation.previousKeyLastUsedTime: it was the previous key's use.
	// +optional
	LastUsedTime *metav1.Time `json:"lastUsedTime,omitempty"`

	// createdBy is the user who created the key, from the
	// keyward.dev/created-by annotation.
	// +optional
	CreatedBy string `json:"createdBy,omitempty"`

	// rotation reports the key's rotations, once it has a schedule or has
	// been rotated.
	// +optional
	Rotation *APIKeyRotationStatus `json:"rotation,omitempty"`
}

// APIKeyRotationStatus is what the controller and the verifier observed of
// a key's rotations.
type APIKeyRotationStatus struct {
	// rotatedAt is when the current key replaced the previous one.
	// +optional
	RotatedAt *metav1.Time `json:"rotatedAt,omitempty"`

	// nextRotationAt is when spec.rotation replaces the current key.
	// +optional
	NextRotationAt *metav1.Time `json:"nextRotationAt,omitempty"`

	// previousKeyID is the key ID of the key the last rotation replaced.
	// +optional
	PreviousKeyID string `json:"previousKeyID,omitempty"`

	// previousKeyExpiresAt is when the previous key stops working.
	// +optional
	PreviousKeyExpiresAt *metav1.Time `json:"previousKeyExpiresAt,omitempty"`

	// previousKeyLastUsedTime is when the verifier last accepted the
	// previous key, written at most once a minute.
	// +optional
	PreviousKeyLastUsedTime *metav1.Time `json:"previousKeyLastUsedTime,omitempty"`

	// lastRotateRequest is the current value of the keyward.dev/rotate
	// annotation once keyward has handled it: it rotated the key, was there
	// when the key was minted, or was handled before (a value applied
	// again never rotates again).
	// +optional
	LastRotateRequest string `json:"lastRotateRequest,omitempty"`
}

// APIKey is one credential of an Application. keyward mints it once, keeps
// only its SHA-256 digest, and delivers the plaintext to spec.secretName.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ak;apikey,categories=keyward
// +kubebuilder:selectablefield:JSONPath=`.spec.application`
// +kubebuilder:printcolumn:name="Application",type=string,JSONPath=`.spec.application`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Key ID",type=string,JSONPath=`.status.keyID`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Last Used",type=date,JSONPath=`.status.lastUsedTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Scopes",type=string,priority=1,JSONPath=`.spec.scopes`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (at most 63 lower-case letters, digits and '-'): it labels the key's hashed Secret"
type APIKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the credential.
	// +required
	Spec APIKeySpec `json:"spec"`

	// status is what the controller observed.
	// +optional
	Status APIKeyStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// APIKeyList is a list of APIKeys.
type APIKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []APIKey `json:"items"`
}

// DeliverySecretName is the Secret the key is delivered to: spec.secretName,
// or "<name>-key".
func (k *APIKey) DeliverySecretName() string {
	if k.Spec.SecretName != "" {
		return k.Spec.SecretName
	}
	return k.Name + "-key"
}

// LastUsed is when the verifier last accepted a key of this APIKey, of
// either generation: the later of lastUsedTime and, during a rotation's
// overlap, rotation.previousKeyLastUsedTime. Nil if neither was used.
func (k *APIKey) LastUsed() *metav1.Time {
	last := k.Status.LastUsedTime
	if r := k.Status.Rotation; r != nil && r.PreviousKeyLastUsedTime != nil && (last == nil || last.Before(r.PreviousKeyLastUsedTime)) {
		last = r.PreviousKeyLastUsedTime
	}
	return last
}
