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

// DefaultKeyPrefix is the key prefix of a KeyGroup that sets none.
const DefaultKeyPrefix = "kw"

// HTTPMethod is an HTTP request method in upper case.
// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;PATCH;DELETE;OPTIONS;CONNECT;TRACE
type HTTPMethod string

// ScopePath is a request path a scope rule covers: an exact path such as
// /v1/status, or a prefix ending in "/*" such as /v1/devices/*, which covers
// that prefix itself and everything below it on a segment boundary
// (/v1/devices, /v1/devices/a, /v1/devices/a/b, but not /v1/devicesx).
// Paths are compared case-sensitively with normalised request paths, so a
// scope path must itself be normalised: no "//", no "." or ".." segments.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=1024
// +kubebuilder:validation:Pattern=`^/(\*|(\.{0,2}[^/.*?#;%\\\s][^/*?#;%\\\s]*|\.{3,}[^/*?#;%\\\s]*)(/(\.{0,2}[^/.*?#;%\\\s][^/*?#;%\\\s]*|\.{3,}[^/*?#;%\\\s]*))*(/|/\*)?)?$`
type ScopePath string

// ScopeRule grants a set of methods on a set of paths.
type ScopeRule struct {
	// paths are the request paths this rule covers: exact paths, or prefixes
	// ending in "/*".
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	Paths []ScopePath `json:"paths"`

	// methods are the HTTP methods this rule covers. Empty means any method.
	// HEAD is not implied by GET: list it when it is wanted.
	// +optional
	// +kubebuilder:validation:MaxItems=9
	// +listType=set
	Methods []HTTPMethod `json:"methods,omitempty"`
}

// Scope is a named permission that a key can be granted.
type Scope struct {
	// name identifies the scope in APIKey.spec.scopes and in the RBAC
	// resource name "<keygroup>.<scope>" that the grant check uses. A DNS
	// label.
	// +required
	Name ScopeName `json:"name"`

	// description says what the scope allows, for people choosing scopes.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// rules are the requests this scope allows; a request is allowed when
	// any rule covers its method and path.
	// +required
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +listType=atomic
	Rules []ScopeRule `json:"rules"`
}

// KeyGroupLimits caps what a KeyGroup holds.
type KeyGroupLimits struct {
	// maxApplications is the number of Active applications the group may
	// hold; revoked applications do not count. 0 admits no new application.
	// Default 10.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100000
	MaxApplications *int32 `json:"maxApplications,omitempty"`

	// maxKeysPerApplication is the number of Active keys each application
	// may hold; revoked and expired keys do not count, disabled ones do. 0
	// admits no new key. Default 10.
	// +optional
	// +kubebuilder:default=10
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	MaxKeysPerApplication *int32 `json:"maxKeysPerApplication,omitempty"`
}

// DeletionConfirmation says when deleting an APIKey needs the
// keyward.dev/confirm-delete annotation.
// +kubebuilder:validation:Enum=Always;RecentlyUsed;Never
type DeletionConfirmation string

const (
	// ConfirmAlways asks for confirmation before deleting any key.
	ConfirmAlways DeletionConfirmation = "Always"
	// ConfirmRecentlyUsed asks for confirmation before deleting a key used
	// within recentUseWindow.
	ConfirmRecentlyUsed DeletionConfirmation = "RecentlyUsed"
	// ConfirmNever never asks.
	ConfirmNever DeletionConfirmation = "Never"
)

// DeletionProtection guards keys in use against accidental deletion.
type DeletionProtection struct {
	// confirm says when deleting a key needs the keyward.dev/confirm-delete
	// annotation: Always, RecentlyUsed (default) or Never.
	// +optional
	// +kubebuilder:default=RecentlyUsed
	Confirm DeletionConfirmation `json:"confirm,omitempty"`

	// recentUseWindow is how recent a key's last use must be for
	// RecentlyUsed to ask for confirmation, as a duration such as 72h.
	// Default 72h.
	// +optional
	// +kubebuilder:default="72h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",messageExpression="'must be a positive duration in hours, minutes or seconds, such as 72h (units h, m, s, ms; no d), not ' + self"
	RecentUseWindow *metav1.Duration `json:"recentUseWindow,omitempty"`
}

// KeyGroupSpec describes an API that keys protect.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.keyPrefix) || (has(self.keyPrefix) && self.keyPrefix == oldSelf.keyPrefix)",message="field is immutable: keys already issued carry it; create a new KeyGroup for another prefix",fieldPath=".keyPrefix",reason=FieldValueForbidden
type KeyGroupSpec struct {
	// description says what API this group protects.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Description string `json:"description,omitempty"`

	// keyPrefix starts every key of this group, so that a key says where it
	// belongs and secret scanners can attribute it: a lower-case letter then
	// 1 to 7 lower-case letters or digits. Default "kw". Immutable.
	// +optional
	// +kubebuilder:default=kw
	// +kubebuilder:validation:Pattern=`^[a-z][a-z0-9]{1,7}$`
	KeyPrefix string `json:"keyPrefix,omitempty"`

	// scopes are the permissions a key of this group can be granted.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=name
	Scopes []Scope `json:"scopes,omitempty"`

	// limits cap the applications and keys this group holds.
	// +optional
	// +kubebuilder:default={}
	Limits KeyGroupLimits `json:"limits,omitempty"`

	// allowedSourceRanges are the client networks keys of this group may be
	// used from. Keys inherit them unless they set their own. Empty allows
	// any address.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=set
	AllowedSourceRanges []CIDR `json:"allowedSourceRanges,omitempty"`

	// maxKeyLifetime is the longest a key may live, from its creation to its
	// expiresAt, as a duration such as 8760h. Keys of a group with a
	// maxKeyLifetime must set expiresAt. Unset means no limit.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]*)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",messageExpression="'must be a positive duration in hours, minutes or seconds, such as 8760h (units h, m, s, ms; no d), not ' + self"
	MaxKeyLifetime *metav1.Duration `json:"maxKeyLifetime,omitempty"`

	// deletionProtection says when deleting a key needs confirmation.
	// +optional
	// +kubebuilder:default={}
	DeletionProtection DeletionProtection `json:"deletionProtection,omitempty"`
}

// KeyGroupStatus is what the controller observed of a KeyGroup.
type KeyGroupStatus struct {
	CommonStatus `json:",inline"`

	// applications is the number of Active applications in the group.
	// +optional
	Applications int32 `json:"applications,omitempty"`

	// activeKeys is the number of Active keys across the group's
	// applications.
	// +optional
	ActiveKeys int32 `json:"activeKeys,omitempty"`

	// verifyURL is the URL an ingress calls to verify keys of this group
	// (ingress-nginx auth-url, Traefik ForwardAuth). Envoy ext_authz uses the
	// same URL with /v1/envoy/ in place of /v1/verify/.
	// +optional
	VerifyURL string `json:"verifyURL,omitempty"`
}

// KeyGroup is an API protected by keys: it defines the scopes keys can be
// granted, the limits on applications and keys, and where keys may be used
// from. It is the tenant boundary: a key of one group is unknown to another.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kg,categories=keyward
// +kubebuilder:printcolumn:name="Prefix",type=string,JSONPath=`.spec.keyPrefix`
// +kubebuilder:printcolumn:name="Applications",type=integer,JSONPath=`.status.applications`
// +kubebuilder:printcolumn:name="Keys",type=integer,JSONPath=`.status.activeKeys`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Verify URL",type=string,priority=1,JSONPath=`.status.verifyURL`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="metadata.name must be a DNS label (at most 63 lower-case letters, digits and '-'): it appears in the verify URL and in RBAC resource names"
type KeyGroup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the protected API.
	// +required
	Spec KeyGroupSpec `json:"spec"`

	// status is what the controller observed.
	// +optional
	Status KeyGroupStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// KeyGroupList is a list of KeyGroups.
type KeyGroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KeyGroup `json:"items"`
}

// Scope returns the scope of the group with the given name, or nil.
func (g *KeyGroup) Scope(name string) *Scope {
	for i := range g.Spec.Scopes {
		if string(g.Spec.Scopes[i].Name) == name {
			return &g.Spec.Scopes[i]
		}
	}
	return nil
}

// DefaultLimit is the default of maxApplications and maxKeysPerApplication.
const DefaultLimit = 10

// MaxApplications returns the group's maxApplications, or its default.
func (g *KeyGroup) MaxApplications() int {
	if g.Spec.Limits.MaxApplications == nil {
		return DefaultLimit
	}
	return int(*g.Spec.Limits.MaxApplications)
}

// MaxKeysPerApplication returns the group's maxKeysPerApplication, or its
// default.
func (g *KeyGroup) MaxKeysPerApplication() int {
	if g.Spec.Limits.MaxKeysPerApplication == nil {
		return DefaultLimit
	}
	return int(*g.Spec.Limits.MaxKeysPerApplication)
}

// RecentUseWindow returns how recent a last use makes a key "recently used"
// for deletion protection.
func (g *KeyGroup) RecentUseWindow() time.Duration {
	if w := g.Spec.DeletionProtection.RecentUseWindow; w != nil {
		return w.Duration
	}
	return 72 * time.Hour
}

// Prefix returns the group's key prefix, or the default when unset.
func (g *KeyGroup) Prefix() string {
	if g.Spec.KeyPrefix == "" {
		return DefaultKeyPrefix
	}
	return g.Spec.KeyPrefix
}
