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
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user database, /etc/passwd and /etc/group: root, as every image has
// it, and nonroot.
const (
	users  = "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	groups = "root:x:0:\nnonroot:x:65532:\n"
)

// file is one entry of the layer.
type file struct {
	name     string // relative, directories ending in /
	mode     int64
	uid      int
	body     []byte
	typeflag byte
}

// rootfs lists the layer's entries, sorted by name.
func rootfs(binary []byte) []file {
	files := []file{
		{name: "etc/", mode: 0o755, typeflag: tar.TypeDir},
		{name: "etc/group", mode: 0o644, body: []byte(groups), typeflag: tar.TypeReg},
		{name: "etc/passwd", mode: 0o644, body: []byte(users), typeflag: tar.TypeReg},
		{name: "home/", mode: 0o755, typeflag: tar.TypeDir},
		{name: "home/nonroot/", mode: 0o700, uid: 65532, typeflag: tar.TypeDir},
		{name: strings.TrimPrefix(Binary, "/"), mode: 0o755, body: binary, typeflag: tar.TypeReg},
		{name: "tmp/", mode: 0o1777, typeflag: tar.TypeDir},
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	return files
}

// layer is the gzipped tar of the root filesystem: fixed owners, modes and
// times, no names of users or groups, gzip without a name or time.
func layer(o Options, binary []byte) (v1.Layer, error) {
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range rootfs(binary) {
		h := &tar.Header{
			Typeflag: f.typeflag,
			Name:     f.name,
			Mode:     f.mode,
			Uid:      f.uid,
			Gid:      f.uid,
			Size:     int64(len(f.body)),
			ModTime:  o.Created,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	b := gz.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// image is linux/arch's image: one layer, the user, the entrypoint and the
// labels, as OCI media types.
func image(o Options, arch, bin string) (v1.Image, error) {
	binary, err := os.ReadFile(bin) //nolint:gosec // G304: the binary compile just wrote
	if err != nil {
		return nil, err
	}
	l, err := layer(o, binary)
	if err != nil {
		return nil, err
	}
	labels := Labels(o)
	img, err := mutate.ConfigFile(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      v1.Time{Time: o.Created},
		Config: v1.Config{
			User:       User,
			Entrypoint: []string{Binary},
			WorkingDir: "/",
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     l,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   v1.Time{Time: o.Created},
			CreatedBy: "hack/image: " + Binary + ", /etc/passwd and /etc/group (nonroot 65532), /home/nonroot, /tmp",
			Comment:   "keyward " + o.Version,
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, labels).(v1.Image), nil
}

// write writes the index of the images into <out>/image, an OCI layout
// replaced whole, and each image into <out>/keyward-image-<arch>.tar.
func write(o Options, images map[string]v1.Image) (Result, error) {
	res := Result{Images: map[string]v1.Hash{}, Tarballs: map[string]string{}}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	tag, err := name.NewTag(o.Repository + ":" + o.Version)
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil { //nolint:gosec // G301: build output, readable as any
		return res, err
	}
	for _, arch := range o.Arches {
		img := images[arch]
		if res.Images[arch], err = img.Digest(); err != nil {
			return res, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
		})
		res.Tarballs[arch] = filepath.Join(o.Out, "keyward-image-"+arch+".tar")
		if err := tarball.WriteToFile(res.Tarballs[arch], tag, img); err != nil {
			return res, fmt.Errorf("tarball for linux/%s: %w", arch, err)
		}
	}
	idx = mutate.Annotations(idx, Labels(o)).(v1.ImageIndex)
	if res.Index, err = idx.Digest(); err != nil {
		return res, err
	}

	dir := filepath.Join(o.Out, "image")
	if err := os.RemoveAll(dir); err != nil {
		return res, err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return res, err
	}
	err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": o.Version,
		"io.containerd.image.name":          tag.String(),
	}))
	return res, err
}
