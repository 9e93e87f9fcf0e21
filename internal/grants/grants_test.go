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

package grants

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// authorizer stands in for the API server's: it answers each
// SubjectAccessReview with what it allows at the moment the review
// arrives, and can hold reviews until released.
type authorizer struct {
	mu      sync.Mutex
	allowed map[string]bool // the review's spec, as JSON → allowed
	reviews []authorizationv1.SubjectAccessReviewSpec
	arrived chan struct{}
	hold    chan struct{} // when non-nil, each review waits on it
	fail    error
}

func newAuthorizer() *authorizer {
	return &authorizer{allowed: map[string]bool{}, arrived: make(chan struct{}, 100)}
}

// set allows or denies user's grant of payments.read in team-a, for that
// exact identity; any question not set is denied.
func (a *authorizer) set(t *testing.T, user authenticationv1.UserInfo, allowed bool) {
	q := questionOf(t, user, "read")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.allowed[q] = allowed
}

func (a *authorizer) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reviews)
}

func (a *authorizer) client() client.Client {
	return interceptor.NewClient(fake.NewClientBuilder().Build(), interceptor.Funcs{
		Create: func(_ context.Context, _ client.WithWatch, obj client.Object, _ ...client.CreateOption) error {
			sar := obj.(*authorizationv1.SubjectAccessReview)
			q, err := json.Marshal(sar.Spec)
			if err != nil {
				return err
			}
			a.mu.Lock()
			a.reviews = append(a.reviews, sar.Spec)
			hold, fail := a.hold, a.fail
			allowed := a.allowed[string(q)] // decided as the review arrives
			a.mu.Unlock()
			a.arrived <- struct{}{}
			if hold != nil {
				<-hold
			}
			if fail != nil {
				return fail
			}
			sar.Status.Allowed = allowed
			return nil
		},
	})
}

var alice = authenticationv1.UserInfo{Username: "alice", UID: "1", Groups: []string{"team-a"}, Extra: map[string]authenticationv1.ExtraValue{"scopes": {"x"}}}

func TestReviewerAsksEveryTime(t *testing.T) {
	a := newAuthorizer()
	r := NewReviewer(a.client())
	ctx := context.Background()
	a.set(t, alice, true)
	for i, want := range []bool{true, true, false, true} {
		if i == 2 {
			a.set(t, alice, false)
		}
		if i == 3 {
			a.set(t, alice, true)
		}
		got, err := r.CanGrant(ctx, alice, "team-a", "payments", "read")
		if err != nil || got != want {
			t.Fatalf("question %d: CanGrant = %v, %v; want %v (the grant as it stands when asked)", i, got, err, want)
		}
	}
	if n := a.count(); n != 4 {
		t.Fatalf("%d reviews for 4 questions asked one after another, want 4: no answer is kept", n)
	}
	spec := a.reviews[0]
	ra := spec.ResourceAttributes
	if spec.User != "alice" || spec.UID != "1" || len(spec.Groups) != 1 || spec.Extra["scopes"][0] != "x" ||
		ra.Namespace != "team-a" || ra.Verb != "grant" || ra.Group != "keyward.dev" || ra.Resource != "scopes" || ra.Name != "payments.read" {
		t.Fatalf("review = %+v %+v, want alice's whole identity asking grant on scopes.keyward.dev payments.read in team-a", spec, *ra)
	}
}

// ask asks n identical questions at once and returns their answers once
// all are in.
func ask(r *Reviewer, user authenticationv1.UserInfo, scope string, n int) (<-chan bool, <-chan error) {
	answers, errs := make(chan bool, n), make(chan error, n)
	for range n {
		go func() {
			ok, err := r.CanGrant(context.Background(), user, "team-a", "payments", scope)
			answers <- ok
			errs <- err
		}()
	}
	return answers, errs
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A grant revoked while a review is on its way is seen by every question
// asked meanwhile: they share the next review, not the one on its way.
func TestReviewerQuestionsAskedMeanwhileGetTheNextReview(t *testing.T) {
	a := newAuthorizer()
	r := NewReviewer(a.client())
	a.set(t, alice, true)
	a.hold = make(chan struct{})

	first, firstErr := ask(r, alice, "read", 1)
	<-a.arrived // the first review is on its way, and still allowed

	const meanwhile = 20
	later, laterErr := ask(r, alice, "read", meanwhile)
	waitFor(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		fs := r.flights[questionOf(t, alice, "read")]
		return fs != nil && fs.next != nil && waiting(fs.next) == meanwhile
	}, "the later questions to board the next review")

	a.set(t, alice, false) // revoked while the first is on its way
	a.hold <- struct{}{}   // the first review answers
	if ok, err := <-first, <-firstErr; !ok || err != nil {
		t.Fatalf("first question: %v, %v; want allowed (asked before the revocation)", ok, err)
	}
	<-a.arrived // the next review, sent only now
	a.hold <- struct{}{}
	for range meanwhile {
		if ok, err := <-later, <-laterErr; ok || err != nil {
			t.Fatalf("a question asked while the first review was on its way: %v, %v; want refused, as the grant stood once it was asked", ok, err)
		}
	}
	if n := a.count(); n != 2 {
		t.Fatalf("%d reviews for 1+%d questions, want 2: those asked meanwhile share one", n, meanwhile)
	}
	// The last flight is let go just after its questions are answered.
	waitFor(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.flights) == 0
	}, "no question held once all were answered")
}

// waiting counts how many questions have boarded f, from the test's hook.
func waiting(f *flight) int { return f.boarded }

func questionOf(t *testing.T, user authenticationv1.UserInfo, scope string) string {
	t.Helper()
	q, err := json.Marshal(reviewSpec(user, "team-a", "payments", scope))
	if err != nil {
		t.Fatal(err)
	}
	return string(q)
}

// Questions that differ in anything the authorizer reads never share a
// review: another user, another scope, the same name with other groups.
func TestReviewerDifferentQuestionsDoNotShare(t *testing.T) {
	a := newAuthorizer()
	r := NewReviewer(a.client())
	a.set(t, alice, true)
	a.hold = make(chan struct{})

	first, _ := ask(r, alice, "read", 1)
	<-a.arrived
	bob := authenticationv1.UserInfo{Username: "bob"}
	otherGroups := alice
	otherGroups.Groups = []string{"team-b"}
	otherExtra := alice
	otherExtra.Extra = map[string]authenticationv1.ExtraValue{"scopes": {"y"}}
	answers := []<-chan bool{}
	for _, q := range []struct {
		user  authenticationv1.UserInfo
		scope string
	}{{bob, "read"}, {alice, "write"}, {otherGroups, "read"}, {otherExtra, "read"}} {
		ans, _ := ask(r, q.user, q.scope, 1)
		answers = append(answers, ans)
		<-a.arrived // sent at once: nothing of the same question is on its way
	}
	close(a.hold)
	<-first
	for i, ans := range answers {
		if <-ans {
			t.Fatalf("question %d allowed: only alice with her own groups and extra holds payments.read", i)
		}
	}
	if n := a.count(); n != 5 {
		t.Fatalf("%d reviews for 5 different questions, want 5", n)
	}
}

// A review that fails fails every question it answers, with the reason,
// and never reads as allowed.
func TestReviewerFailureIsAnError(t *testing.T) {
	a := newAuthorizer()
	r := NewReviewer(a.client())
	a.set(t, alice, true)
	a.fail = errors.New("the API server is away")
	answers, errs := ask(r, alice, "read", 5)
	for range 5 {
		ok, err := <-answers, <-errs
		if ok || err == nil || !errors.Is(err, a.fail) {
			t.Fatalf("CanGrant = %v, %v; want not allowed and the review's error", ok, err)
		}
	}
}

// A question whose context ends stops waiting; the others still get
// their answer.
func TestReviewerContextEnds(t *testing.T) {
	a := newAuthorizer()
	r := NewReviewer(a.client())
	a.set(t, alice, true)
	a.hold = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.CanGrant(ctx, alice, "team-a", "payments", "read")
		done <- err
	}()
	<-a.arrived
	others, _ := ask(r, alice, "read", 3)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("CanGrant after its context ended = %v, want context.Canceled", err)
	}
	close(a.hold)
	for range 3 {
		if !<-others {
			t.Fatal("a question still waiting was not answered after another gave up")
		}
	}
}
