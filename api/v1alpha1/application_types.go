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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ApplicationType says what kind of consumer an Application stands for.
// +kubebuilder:validation:Enum=Application;Customer
type ApplicationType string

const (
	// ApplicationTypeApplication is a program, identified by an application
	// EUI or similar.
	ApplicationTypeApplication ApplicationType = "Application"
	// ApplicationTypeCustomer is a customer account, identified by a
	// customer ID.
	ApplicationTypeCustomer ApplicationType = "Customer"
)

// ApplicationSpec describes a consumer of a KeyGroup's API.
// +kubebuilder:validation:XValidation:rule="self.keyGroup == oldSelf.keyGroup",message="field is immutable; create a new Application to move to another KeyGroup",fieldPath=".keyGroup",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.revoked) || !oldSelf.revoked || (has(self.revoked) && self.revoked)",message="cannot be set back to false; create a new Application instead",fieldPath=".revoked",reason=FieldValueForbidden
type ApplicationSpec struct {
	// keyGroup is the name of the KeyGroup, in the same namespace, whose API
	// this application consumes. Immutable.
	// +required
	KeyGroup ObjectName `json:"keyGroup"`

	// displayName is a human-readable name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	DisplayName string `json:"displayName,omitempty"`

	// description says what the application is and who runs it.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// type is Application (a program) or Customer (an account). Default
	// Application.
	// +optional
	// +kubebuilder:default=Application
	Type ApplicationType `json:"type,omitempty"`

	// externalID identifies the consumer outside the cluster: an
	// application EUI or a customer ID. The verifier passes it upstream in
	// X-Auth-External-ID, and deleting a protected key must be confirmed
	// with it.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[!-~]+$`
	ExternalID string `json:"externalID,omitempty"`

	// revoked, once true, stops every key of the application for good. It
	// can never be set back to false.
	// +optional
	Revoked bool `json:"revoked,omitempty"`
}

// ApplicationPhase is where an Application stands.
// +kubebuilder:validation:Enum=Pending;Active;Revoked;Rejected
type ApplicationPhase string

const (
	// ApplicationPending waits for its KeyGroup to exist.
	ApplicationPending ApplicationPhase = "Pending"
	// ApplicationActive may hold keys.
	ApplicationActive ApplicationPhase = "Active"
	// ApplicationRevoked was revoked; none of its keys work.
	ApplicationRevoked ApplicationPhase = "Revoked"
	// ApplicationRejected was over its group's maxApplications when it was
	// created; it holds no working keys. Terminal.
	ApplicationRejected ApplicationPhase = "Rejected"
)

// ApplicationStatus is what the controller observed of an Application.
type ApplicationStatus struct {
	CommonStatus `json:",inline"`

	// phase is Pending, Active, Revoked or Rejected.
	// +optional
	Phase ApplicationPhase `json:"phase,omitempty"`

	// activeKeys is the number of the application's keys that count against
	// maxKeysPerApplication: Active and Disabled ones.
	// +optional
	ActiveKeys int32 `json:"activeKeys,omitempty"`

	// createdBy is the user who created the application, from the
	// keyward.dev/created-by annotation.
	// +optional
	CreatedBy string `json:"createdBy,omitempty"`

	// keyGroupUID is the UID of the KeyGroup the application was admitted
	// to (made Active in). A KeyGroup deleted and created again under the
	// same name is a new group: the application is admitted to it again,
	// against its maxApplications, before any key of it is issued there.
	// +optional
	KeyGroupUID types.UID `json:"keyGroupUID,omitempty"`
}

// Application is a consumer of a KeyGroup's API that holds keys: a program
// or a customer account.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kwapp,categories=keyward
// +kubebuilder:selectablefield:JSONPath=`.spec.keyGroup`
// +kubebuilder:printcolumn:name="Key Group",type=string,JSONPath=`.spec.keyGroup`
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Keys",type=integer,JSONPath=`.status.activeKeys`
// +kubebuilder:printcolumn:name="External ID",type=string,priority=1,JSONPath=`.spec.externalID`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (at most 63 lower-case letters, digits and '-'): it labels the application's hashed keys"
type Application struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the consumer.
	// +required
	Spec ApplicationSpec `json:"spec"`

	// status is what the controller observed.
	// +optional
	Status ApplicationStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ApplicationList is a list of Applications.
type ApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Application `json:"items"`
}

// ConfirmationValue is the value of keyward.dev/confirm-delete that confirms
// deleting one of this application's keys: its externalID, or its name when
// it has none.
func (a *Application) ConfirmationValue() string {
	if a.Spec.ExternalID != "" {
		return a.Spec.ExternalID
	}
	return a.Name
}
