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
	"bytes"
	"errors"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

// encodePage encodes list as the API server sends it: the protobuf
// serializer's envelope around the SecretList.
func encodePage(t testing.TB, list *corev1.SecretList) []byte {
	t.Helper()
	list.APIVersion, list.Kind = "v1", "SecretList"
	var b bytes.Buffer
	if err := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme).Encode(list, &b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// storedSecret is hashed Secret i as the API server holds it: every field
// the store skips set too (managedFields, labels, annotations, owner,
// timestamps, type), so that skipping them is tested.
func storedSecret(t testing.TB, i int) corev1.Secret {
	k := newStoreKey(t, fmt.Sprintf("key-%06d", i))
	s := k.secret()
	now := metav1.Now()
	s.UID, s.ResourceVersion, s.Generation, s.CreationTimestamp = "00000000-0000-4000-8000-000000000001", fmt.Sprint(1000+i), 3, now
	s.Labels = k.rec.Labels(string(s.UID))
	s.Annotations = map[string]string{"keyward.dev/apikey": "iot/" + s.Name}
	s.Finalizers = []string{"example.com/keep"}
	s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: "x", UID: "u"}}
	s.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "keyward-manager", Operation: "Update", APIVersion: "v1", Time: &now, FieldsType: "FieldsV1",
		FieldsV1: metav1.NewFieldsV1(`{"f:data":{".":{},"f:digest":{}}}`)}}
	s.Type = corev1.SecretTypeOpaque
	s.Data["empty"] = []byte{}
	return *s
}

// What the page decoder reads of each Secret is what client-go's generated
// decoder reads, and the list's resourceVersion and continue token too.
func TestDecodeSecretPageMatchesGenerated(t *testing.T) {
	list := &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "98765", Continue: "token-of-the-next-page"}}
	for i := range 50 {
		list.Items = append(list.Items, storedSecret(t, i))
	}
	body := encodePage(t, list)

	var got []corev1.Secret
	page, err := decodeSecretPage(body, func(s *corev1.Secret) {
		data := map[string][]byte{}
		for k, v := range s.Data {
			data[k] = bytes.Clone(v) // each must not keep them: they are reused
		}
		got = append(got, corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, ResourceVersion: s.ResourceVersion},
			Data: data})
	})
	if err != nil {
		t.Fatal(err)
	}
	if page.resourceVersion != "98765" || page.continueToken != "token-of-the-next-page" {
		t.Errorf("list metadata: resourceVersion %q, continue %q", page.resourceVersion, page.continueToken)
	}
	generated, _, err := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme).Decode(body, nil, &corev1.SecretList{})
	if err != nil {
		t.Fatal(err)
	}
	want := generated.(*corev1.SecretList).Items
	if len(got) != len(want) {
		t.Fatalf("%d Secrets decoded, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := &want[i], &got[i]
		if g.Name != w.Name || g.Namespace != w.Namespace || g.ResourceVersion != w.ResourceVersion || len(g.Data) != len(w.Data) {
			t.Fatalf("Secret %d: %s/%s rv %s, %d data keys; want %s/%s rv %s, %d", i, g.Namespace, g.Name, g.ResourceVersion, len(g.Data), w.Namespace, w.Name, w.ResourceVersion, len(w.Data))
		}
		for k, v := range w.Data {
			if gv, ok := g.Data[k]; !ok || !bytes.Equal(gv, v) {
				t.Errorf("Secret %s: data %q is %q, want %q", w.Name, k, gv, v)
			}
		}
	}

	// Metadata only: the items are skipped.
	page, err = decodeSecretPage(body, nil)
	if err != nil || page.resourceVersion != "98765" || page.continueToken != "token-of-the-next-page" {
		t.Errorf("metadata only: %+v, %v", page, err)
	}
}

// A page the decoder cannot read is an error that says so, never a panic
// and never a partial page taken for a whole one: every prefix of a page
// that cuts a field fails.
func TestDecodeSecretPageRefusesMalformed(t *testing.T) {
	list := &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "7"}}
	for i := range 3 {
		list.Items = append(list.Items, storedSecret(t, i))
	}
	body := encodePage(t, list)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"JSON", []byte(`{"kind":"SecretList","apiVersion":"v1","items":[]}`)},
		{"empty", nil},
		{"envelope only", protobufMagic},
		{"cut in the middle", body[:len(body)/2]},
		{"cut a byte short", body[:len(body)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := decodeSecretPage(tc.body, func(*corev1.Secret) {}); !errors.Is(err, errPage) {
				t.Errorf("error %v, want one wrapping %v", err, errPage)
			}
		})
	}
}

func FuzzDecodeSecretPage(f *testing.F) {
	list := &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "7", Continue: "c"}}
	for i := range 2 {
		list.Items = append(list.Items, storedSecret(f, i))
	}
	f.Add(encodePage(f, list))
	f.Add(append(bytes.Clone(protobufMagic), 0x12, 0x00))
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []string
		page, err := decodeSecretPage(body, func(s *corev1.Secret) { got = append(got, s.Namespace+"/"+s.Name) })
		if err != nil {
			return
		}
		// Whatever the page decoder accepts, the generated decoder reads
		// the same way (it may accept more: it does not check unknown
		// wire types the same way, so only one direction is checked).
		obj, _, gerr := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme).Decode(body, nil, &corev1.SecretList{})
		l, ok := obj.(*corev1.SecretList)
		if gerr != nil || !ok {
			return
		}
		if l.ResourceVersion != page.resourceVersion || l.Continue != page.continueToken || len(l.Items) != len(got) {
			t.Fatalf("page decoder: rv %q continue %q %d items; generated: rv %q continue %q %d items",
				page.resourceVersion, page.continueToken, len(got), l.ResourceVersion, l.Continue, len(l.Items))
		}
		for i := range l.Items {
			if w := l.Items[i].Namespace + "/" + l.Items[i].Name; got[i] != w {
				t.Fatalf("item %d: %s, generated %s", i, got[i], w)
			}
		}
	})
}

// BenchmarkDecodeSecretPage decodes a page of 500 hashed Secrets as the
// API server stores them (managedFields and all), with the page decoder
// the feed uses and, as its floor, with client-go's generated decoder.
func BenchmarkDecodeSecretPage(b *testing.B) {
	list := &corev1.SecretList{}
	for i := range 500 {
		list.Items = append(list.Items, storedSecret(b, i))
	}
	body := encodePage(b, list)
	b.Run("page-decoder", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := decodeSecretPage(body, func(*corev1.Secret) {}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(list.Items)), "ns/key")
	})
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		ser := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
		for range b.N {
			if _, _, err := ser.Decode(body, nil, &corev1.SecretList{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(list.Items)), "ns/key")
	})
}
