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
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Resources as RBAC names them.
const (
	resourceSecrets      = "secrets"
	resourceAPIKeys      = "apikeys.keyward.dev"
	resourceApplications = "applications.keyward.dev"
)

// Verbs as RBAC names them.
const (
	verbGet    = "get"
	verbList   = "list"
	verbPatch  = "patch"
	verbDelete = "delete"
)

// Who grants what a responder needs (config/rbac/responder_role.yaml).
const (
	grantedByResponderRole        = "the keyward-responder Role in the operator's namespace grants it"
	grantedByResponderClusterRole = "the keyward-responder ClusterRole grants it"
)

// access names one request as RBAC sees it, so that a refusal can say
// which permission is missing.
type access struct {
	verb      string
	resource  string // plural, with its API group unless core: "apikeys.keyward.dev"
	namespace string // "" for all namespaces
	name      string // the object, if one
	// hint says who grants the permission, when a shipped role does.
	hint string
}

// where is the scope of the request, as a phrase.
func (a access) where() string {
	if a.namespace == "" {
		return "in all namespaces"
	}
	return fmt.Sprintf("in namespace %q", a.namespace)
}

// errForbidden is wrapped by every refusal by RBAC.
var errForbidden = errors.New("forbidden")

// deniedError is an RBAC refusal, naming the permission missing.
type deniedError struct {
	access access
	server string // the API server's message: names the user, never a key
}

func (e *deniedError) Error() string {
	msg := fmt.Sprintf("forbidden: missing RBAC permission: verb %q on resource %q %s",
		e.access.verb, e.access.resource, e.access.where())
	if e.access.hint != "" {
		msg += " (" + e.access.hint + ")"
	}
	return msg + "; the API server said: " + e.server
}

func (e *deniedError) Unwrap() error { return errForbidden }

// wrap turns an API error into one that says what was asked and, when RBAC
// refused it, which permission is missing. Errors of the API server name
// objects and users, never key material: no request of this plugin
// carries any.
func (a access) wrap(err error) error {
	if err == nil {
		return nil
	}
	what := a.resource
	if a.name != "" {
		what += " " + a.name
	}
	var status apierrors.APIStatus
	server := err.Error()
	if errors.As(err, &status) {
		server = status.Status().Message
	}
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(server, "cannot "+a.verb+" resource"):
		return &deniedError{access: a, server: server}
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("unauthorized: the API server does not accept your credentials; check --kubeconfig, --context and --user: %w", err)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%s not found %s: %w", what, a.where(), err)
	}
	return fmt.Errorf("%s %s %s: %w", a.verb, what, a.where(), err)
}
