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

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Labels and annotations that keyward reads or writes. Their names are part of
// the contract: users, scanners and GitOps tooling select on them.
const (
	// AnnotationCreatedBy records the user who created an Application or
	// APIKey. The mutating webhook sets it from the admission request,
	// overwriting any value the user sent; it is immutable afterwards.
	AnnotationCreatedBy = "keyward.dev/created-by"

	// AnnotationCreatedByUID records the UID of the ServiceAccount that
	// created an Application or APIKey, next to AnnotationCreatedBy, so that
	// a ServiceAccount deleted and created again under the same name is
	// told apart. Set by the mutating webhook; immutable afterwards.
	AnnotationCreatedByUID = "keyward.dev/created-by-uid"

	// AnnotationGrantCheck holds, on every APIKey, the identity of its
	// creator (JSON: user, uid, groups, extra) as the API server
	// authenticated it. The controller asks again, with this identity and
	// just before it mints, whether the creator may grant each of the key's
	// scopes of the KeyGroup it actually mints for. Set by the mutating
	// webhook on create, overwriting any value sent; immutable afterwards.
	AnnotationGrantCheck = "keyward.dev/grant-check"

	// AnnotationApplicationUID and AnnotationKeyGroupUID bind an APIKey to
	// the Application and KeyGroup it was admitted under. The mutating
	// webhook sets them on create when both exist (and removes any value
	// sent otherwise); they are immutable afterwards. The controller
	// records the UIDs it mints under in the hashed Secret, and a key whose
	// Application or KeyGroup was deleted and created again under the same
	// name is Rejected: a key never moves to a new parent.
	AnnotationApplicationUID = "keyward.dev/application-uid"
	AnnotationKeyGroupUID    = "keyward.dev/keygroup-uid"

	// AnnotationRotate, set to a new value (any string, such as a
	// timestamp), starts one rotation of an APIKey: a successor key, the
	// current one kept working for the rotation's overlap. The values
	// handled are recorded, so applying one again never rotates again.
	AnnotationRotate = "keyward.dev/rotate"

	// AnnotationRotationRequestedBy holds the identity (as
	// AnnotationGrantCheck) of the user who last asked an APIKey for a
	// rotation: a new keyward.dev/rotate value, or a change of
	// spec.rotation. The mutating webhook sets it, overwriting any value
	// sent. A key issued by a release that did not record its creator
	// (no AnnotationGrantCheck) is rotated only when that user may grant
	// its scopes.
	AnnotationRotationRequestedBy = "keyward.dev/rotation-requested-by"

	// AnnotationConfirmDelete confirms the deletion of a protected APIKey. It
	// must equal the application's externalID (or its name when it has none).
	AnnotationConfirmDelete = "keyward.dev/confirm-delete"

	// LabelManagedBy, set to ManagedBy, marks every object keyward writes
	// (delivery, hashed and webhook certificate Secrets).
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "keyward"

	// Finalizer is set on every APIKey; it removes the hashed Secret.
	Finalizer = "keyward.dev/hashed-key"
)

// Condition types. Every kind reports Ready; Applications and APIKeys also
// report Synced.
const (
	// ConditionReady is True when the object is doing its job: a KeyGroup
	// is accepted, an Application may hold keys, an APIKey is usable.
	ConditionReady = "Ready"

	// ConditionSynced is False, with reason ReconcileError and the error
	// as its message, while the controller cannot act on the object (the
	// API server is away or refuses a write) and retries with backoff.
	// Meanwhile the phase and Ready stay as they were last achieved. It is
	// True once the last attempt succeeded.
	ConditionSynced = "Synced"

	// ConditionRotated, on an APIKey that has rotated or was asked to, is
	// True with the successor's key ID once a rotation completed, and False
	// with the reason while one is in progress or was refused (the
	// creator's grant gone, the delivery Secret someone else's). A refused
	// rotation leaves the current key working to its end.
	ConditionRotated = "Rotated"
)

// CIDR is an IPv4 or IPv6 network in CIDR notation, such as 203.0.113.0/24
// or 2001:db8::/32.
// +kubebuilder:validation:MinLength=4
// +kubebuilder:validation:MaxLength=49
// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="must be a CIDR such as 203.0.113.0/24 or 2001:db8::/32"
type CIDR string

// ScopeName names a scope of a KeyGroup: a DNS label.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type ScopeName string

// ObjectName is the name of another keyward object in the same namespace: a
// DNS label.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type ObjectName string

// CommonStatus is the part of every status that reports how far the
// controller got.
type CommonStatus struct {
	// observedGeneration is the metadata.generation that this status
	// describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions describe the object's state. Ready is always present once
	// the controller has seen the object.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}
