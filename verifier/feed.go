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

package verifier

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

// keyFeed keeps the store's keys in step with the hashed Secrets: it lists
// them, each Secret straight into the store as the answer arrives, then
// watches from the list's resource version; when the watch cannot be
// resumed (its resource version compacted away), it lists again, and what
// that list did not bring is forgotten (mark and sweep).
//
// client-go's reflector would gather the whole list (or, streaming, every
// object of the initial events) before handing it over: with 100,000 keys,
// several times the memory the store itself needs, at every start and
// relist. A Secret at a time, the verifier's peak stays near what it holds.
type keyFeed struct {
	// rest lists the Secrets of namespace (fetch); secrets watches them.
	rest      rest.Interface
	namespace string
	secrets   typedcorev1.SecretInterface
	selector  string
	store     *Store
	counters  watchCounters
	log       logr.Logger

	listed bool // a first list has completed
}

// Run feeds the store until ctx ends, retrying with backoff while the API
// server is away; the store answers from what it holds meanwhile.
func (f *keyFeed) Run(ctx context.Context) {
	backoff := reconnectBackoff()
	rv := ""
	for ctx.Err() == nil {
		var err error
		if rv == "" {
			rv, err = f.list(ctx)
		} else {
			rv, err = f.watch(ctx, rv)
		}
		switch {
		case err == nil:
			backoff = reconnectBackoff()
		case ctx.Err() == nil:
			f.log.V(1).Info("Hashed Secrets: retrying", "error", err.Error())
			select {
			case <-ctx.Done():
			case <-time.After(backoff.Step()):
			}
		}
	}
}

// list puts every hashed Secret into the store as the API server's answer
// arrives, one Secret at a time, forgets the keys it did not find, and
// returns the list's resource version.
//
// One request, not pages: the API server serves it from its watch cache
// and streams it, and readSecretList reads it as a stream, so the whole
// list is never held here either. Pages cost more than they save: a page
// after the first (a continue token) is served at a cost that grows with
// the collection, not the page; listing 100,000 hashed Secrets took 14 s
// in pages of 500, 3.8 s in pages of 5,000 and 2.2 s in one request on the
// same control plane.
func (f *keyFeed) list(ctx context.Context) (string, error) {
	epoch := f.store.beginRelist()
	body, err := openKeyList(ctx, f.rest, f.namespace, f.selector)
	f.counters.list("secrets", metav1.ListOptions{}, err)
	if err != nil {
		return "", err
	}
	defer body.Close()
	page, err := readSecretList(bufio.NewReaderSize(body, 64<<10), func(s *corev1.Secret) { f.store.putKey(s) })
	if err != nil {
		return "", err
	}
	f.store.endRelist(epoch)
	if !f.listed {
		// What the first list decoded is garbage now: give it back, so
		// that the process's resident memory from here on is what it
		// holds.
		f.listed = true
		debug.FreeOSMemory()
	}
	return page.resourceVersion, nil
}

// openKeyList opens the list of the hashed Secrets of namespace that
// selector selects: one request, protobuf, its answer to read as a stream.
// rc should come from listConfig.
func openKeyList(ctx context.Context, rc rest.Interface, namespace, selector string) (io.ReadCloser, error) {
	opts := metav1.ListOptions{LabelSelector: selector}
	return rc.Get().Namespace(namespace).Resource("secrets").
		VersionedParams(&opts, scheme.ParameterCodec).
		SetHeader("Accept", runtime.ContentTypeProtobuf).
		Stream(ctx)
}

// OpenKeyList opens the list a verifier of the hashed Secrets of namespace,
// sharded to groups (all when none: --key-groups), makes when it starts:
// the same request over the same kind of connection. test/bench reads it
// to the end as the floor of the verifier's start.
func OpenKeyList(ctx context.Context, cfg *rest.Config, namespace string, groups []string) (io.ReadCloser, error) {
	selector, err := keySelector(groups)
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(listConfig(cfg))
	if err != nil {
		return nil, err
	}
	return openKeyList(ctx, cs.CoreV1().RESTClient(), namespace, selector)
}

// watch applies changes from rv on until the watch ends, and returns the
// resource version to resume from: "" when it cannot be resumed and the
// next step is a list.
func (f *keyFeed) watch(ctx context.Context, rv string) (string, error) {
	// The API server ends a watch after its timeout; a spread one keeps
	// replicas from resuming all at once.
	timeout := int64(300 + rand.IntN(300)) //nolint:gosec // G404: spreading, not secrecy
	w, err := f.secrets.Watch(ctx, metav1.ListOptions{
		LabelSelector: f.selector, ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout,
	})
	if err != nil {
		if expired(err) {
			f.counters.expired.WithLabelValues("secrets").Inc()
			return "", nil
		}
		return rv, err
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv, nil
		case e, ok := <-w.ResultChan():
			if !ok {
				return rv, nil // ended by its timeout: resume
			}
			next, err := f.apply(e)
			if next == "" && err == nil {
				return "", nil
			}
			if err != nil {
				return rv, err
			}
			rv = next
		}
	}
}

// apply applies one watch event and returns the resource version it
// brings, or "" with no error when the watch expired.
func (f *keyFeed) apply(e watch.Event) (string, error) {
	switch e.Type {
	case watch.Added, watch.Modified:
		if s, ok := e.Object.(*corev1.Secret); ok {
			sl := slim(s)
			f.store.putKey(&sl)
			return s.ResourceVersion, nil
		}
	case watch.Deleted:
		f.store.deleteKey(e.Object)
	case watch.Error:
		err := apierrors.FromObject(e.Object)
		if expired(err) {
			f.counters.expired.WithLabelValues("secrets").Inc()
			return "", nil
		}
		return "", err
	}
	m, err := meta.Accessor(e.Object)
	if err != nil {
		return "", err
	}
	return m.GetResourceVersion(), nil
}

func expired(err error) bool { return apierrors.IsResourceExpired(err) || apierrors.IsGone(err) }
