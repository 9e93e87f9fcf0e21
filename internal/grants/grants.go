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

// Package grants asks the API server whether a user may grant a KeyGroup's
// scope: the admission webhook for the user making a request, the
// controller for a key's recorded creator just before it mints.
package grants

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	keywardv1alpha1 "github.com/keyward/keyward/api/v1alpha1"
)

// The RBAC permission that granting a scope takes: verb "grant" on the
// resource scopes.keyward.dev named "<keygroup>.<scope>", in the key's
// namespace. No such resource is served: it exists only in RBAC rules,
// like "escalate" on roles.
const (
	Verb     = "grant"
	Resource = "scopes"
)

// ScopeResourceName is the RBAC resource name of a KeyGroup's scope.
func ScopeResourceName(keyGroup, scope string) string {
	return keyGroup + "." + scope
}

// Permission describes what granting the scope takes, for messages.
func Permission(namespace, keyGroup, scope string) string {
	return fmt.Sprintf("verb %q on %s.%s named %q in namespace %q",
		Verb, Resource, keywardv1alpha1.GroupVersion.Group, ScopeResourceName(keyGroup, scope), namespace)
}

// Reviewer asks the API server, through SubjectAccessReviews, whether a
// user may grant a scope, so every authorizer (RBAC, webhooks) has its say.
// The admission webhook and the controller share one Reviewer.
//
// Identical questions asked together share one review: while a review is
// on its way, the same question asked again waits for the next review,
// which is sent when the one on its way is answered and answers everyone
// who waited for it. Every answer therefore comes from a review sent after
// its question was asked (one sent before it could miss a grant revoked in
// between), and no answer is kept once given. Issuing a thousand keys of
// one group and scope at once, as GitOps does, then costs a handful of
// reviews instead of two per key.
type Reviewer struct {
	client client.Client

	mu      sync.Mutex
	flights map[string]*flights
}

// flights are the reviews of one question: the one on its way, and the
// next, gathering the questions asked since.
type flights struct {
	onItsWay, next *flight
}

// flight is one review and, once done is closed, its answer.
type flight struct {
	sar     *authorizationv1.SubjectAccessReview
	boarded int // questions waiting for it to be sent
	done    chan struct{}
	allowed bool
	err     error
}

// flightTimeout bounds a review that answers several questions, none of
// whose contexts it can follow.
const flightTimeout = 30 * time.Second

// NewReviewer returns a Reviewer that sends its reviews through c.
func NewReviewer(c client.Client) *Reviewer {
	return &Reviewer{client: c, flights: map[string]*flights{}}
}

// CanGrant reports whether user holds "grant" on the scope.
func (r *Reviewer) CanGrant(ctx context.Context, user authenticationv1.UserInfo, namespace, keyGroup, scope string) (bool, error) {
	spec := reviewSpec(user, namespace, keyGroup, scope)
	// The whole review is the question: json.Marshal writes maps in key
	// order, so the same question always has the same key.
	question, err := json.Marshal(spec)
	if err != nil {
		return false, err
	}
	f := r.board(string(question), spec)
	select {
	case <-f.done:
		err = f.err
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return false, fmt.Errorf("asking whether %q may grant %s: %w", user.Username, ScopeResourceName(keyGroup, scope), err)
	}
	return f.allowed, nil
}

// reviewSpec is the SubjectAccessReview that asks whether user holds
// "grant" on the scope, with the user's whole identity.
func reviewSpec(user authenticationv1.UserInfo, namespace, keyGroup, scope string) authorizationv1.SubjectAccessReviewSpec {
	extra := make(map[string]authorizationv1.ExtraValue, len(user.Extra))
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	return authorizationv1.SubjectAccessReviewSpec{
		User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace,
			Verb:      Verb,
			Group:     keywardv1alpha1.GroupVersion.Group,
			Resource:  Resource,
			Name:      ScopeResourceName(keyGroup, scope),
		},
	}
}

// board returns the flight that will answer question: a new one sent now
// if none is on its way, else the next one.
func (r *Reviewer) board(question string, spec authorizationv1.SubjectAccessReviewSpec) *flight {
	r.mu.Lock()
	defer r.mu.Unlock()
	fs := r.flights[question]
	if fs == nil {
		fs = &flights{}
		r.flights[question] = fs
	}
	if fs.onItsWay == nil {
		fs.onItsWay = newFlight(spec)
		go r.send(question, fs.onItsWay)
		return fs.onItsWay
	}
	if fs.next == nil {
		fs.next = newFlight(spec)
	}
	fs.next.boarded++
	return fs.next
}

func newFlight(spec authorizationv1.SubjectAccessReviewSpec) *flight {
	return &flight{sar: &authorizationv1.SubjectAccessReview{Spec: spec}, done: make(chan struct{})}
}

// send sends f's review, answers its questions, and sends the next flight
// of the same question, if any gathered meanwhile.
func (r *Reviewer) send(question string, f *flight) {
	for f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), flightTimeout)
		f.err = r.client.Create(ctx, f.sar)
		cancel()
		f.allowed = f.err == nil && f.sar.Status.Allowed
		close(f.done)

		r.mu.Lock()
		fs := r.flights[question]
		fs.onItsWay, fs.next = fs.next, nil
		f = fs.onItsWay
		if f == nil {
			delete(r.flights, question)
		}
		r.mu.Unlock()
	}
}

// Identity is the keyward.dev/grant-check value for user.
func Identity(user authenticationv1.UserInfo) (string, error) {
	b, err := json.Marshal(authenticationv1.UserInfo{Username: user.Username, UID: user.UID, Groups: user.Groups, Extra: user.Extra})
	return string(b), err
}

// ParseIdentity reads a keyward.dev/grant-check value.
func ParseIdentity(s string) (authenticationv1.UserInfo, error) {
	var u authenticationv1.UserInfo
	if err := json.Unmarshal([]byte(s), &u); err != nil || u.Username == "" {
		return u, fmt.Errorf("annotation %s does not hold an identity", keywardv1alpha1.AnnotationGrantCheck)
	}
	return u, nil
}
