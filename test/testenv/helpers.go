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

package testenv

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// Eventually polls f every 20 ms until it returns nil, and fails the test
// with f's last error once timeout has passed.
func Eventually(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Allowed asks the API server, through c, whether it allows what r asks.
func Allowed(ctx context.Context, c client.Client, r *authorizationv1.SubjectAccessReview) (bool, error) {
	got := r.DeepCopy()
	if err := c.Create(ctx, got); err != nil {
		return false, err
	}
	return got.Status.Allowed, nil
}

// AwaitAllowed waits until the API server allows what each review asks.
// Its authorizer learns of new RBAC bindings through a watch, moments after
// they are written: a test that uses a binding it has just made waits here
// first, so that a refusal it then sees is the roles'.
func AwaitAllowed(t testing.TB, c client.Client, reviews ...*authorizationv1.SubjectAccessReview) {
	t.Helper()
	for _, r := range reviews {
		Eventually(t, time.Minute, func() error {
			ok, err := Allowed(context.Background(), c, r)
			if err == nil && !ok {
				err = fmt.Errorf("%s may not %s yet", r.Spec.User, describe(r.Spec))
			}
			return err
		})
	}
}

// describe names the request of a review.
func describe(s authorizationv1.SubjectAccessReviewSpec) string {
	if a := s.ResourceAttributes; a != nil {
		return fmt.Sprintf("%s %s in %q", a.Verb, a.Resource, a.Namespace)
	}
	if a := s.NonResourceAttributes; a != nil {
		return a.Verb + " " + a.Path
	}
	return "do what the review asks"
}

// NewClientFunc builds a manager's client (manager.Options.NewClient).
type NewClientFunc func(cfg *rest.Config, opts client.Options) (client.Client, error)

// ObservingClient returns a NewClientFunc whose clients report every write
// to observe, before making it: the verb ("create", "update", "patch",
// "apply", "delete", or "patch/<subresource>", "update/<subresource>") and
// the object or apply configuration.
func ObservingClient(observe func(verb string, obj any)) NewClientFunc {
	return InterceptingClient(func(verb string, obj any) error { observe(verb, obj); return nil })
}

// InterceptingClient is ObservingClient whose before may refuse a write:
// its error is returned instead of making it (a crashed process, say).
func InterceptingClient(before func(verb string, obj any) error) NewClientFunc {
	return func(cfg *rest.Config, opts client.Options) (client.Client, error) {
		c, err := client.NewWithWatch(cfg, opts)
		if err != nil {
			return nil, err
		}
		return interceptor.NewClient(c, interceptor.Funcs{
			Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
				if err := before("create", obj); err != nil {
					return err
				}
				return c.Create(ctx, obj, opts...)
			},
			Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
				if err := before("update", obj); err != nil {
					return err
				}
				return c.Update(ctx, obj, opts...)
			},
			Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
				if err := before("patch", obj); err != nil {
					return err
				}
				return c.Patch(ctx, obj, p, opts...)
			},
			Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
				if err := before("apply", obj); err != nil {
					return err
				}
				return c.Apply(ctx, obj, opts...)
			},
			Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
				if err := before("delete", obj); err != nil {
					return err
				}
				return c.Delete(ctx, obj, opts...)
			},
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, opts ...client.SubResourcePatchOption) error {
				if err := before("patch/"+sub, obj); err != nil {
					return err
				}
				return c.SubResource(sub).Patch(ctx, obj, p, opts...)
			},
			SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
				if err := before("update/"+sub, obj); err != nil {
					return err
				}
				return c.SubResource(sub).Update(ctx, obj, opts...)
			},
		}), nil
	}
}

// SyncBuffer is a bytes.Buffer that goroutines may write to while a test
// reads it: for logs and command output.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
