package deploy_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"
)

// setImage does to dir/kustomization.yaml what
// `kustomize edit set image patjanitor=<image>` does: it loads the
// kustomization, replaces the images: entry named patjanitor (or adds one)
// with newName and newTag split from image, and writes the file back.
func setImage(t *testing.T, dir, image string) {
	t.Helper()
	path := filepath.Join(dir, "kustomization.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var k types.Kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	i := strings.LastIndexByte(image, ':')
	img := types.Image{Name: "patjanitor", NewName: image[:i], NewTag: image[i+1:]}
	replaced := false
	for j := range k.Images {
		if k.Images[j].Name == img.Name {
			k.Images[j], replaced = img, true
		}
	}
	if !replaced {
		k.Images = append(k.Images, img)
	}
	out, err := yaml.Marshal(&k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies deploy/kubernetes into a temporary directory, so that the
// edit never touches the repository.
func copyTree(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "kubernetes")
	err := filepath.WalkDir("kubernetes", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("kubernetes", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o750)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestSetImageInAnOverlay: the deployment guide's
// `kustomize edit set image patjanitor=REGISTRY/patjanitor:v0.1.0`, run in
// each shipped overlay (and in the CronJob variant, and in a user's own
// overlay on top of the base), puts that image in every pod. Before, the
// base had already renamed the image to a placeholder registry, the
// overlay's entry matched nothing, and the placeholder was deployed.
func TestSetImageInAnOverlay(t *testing.T) {
	const image = "registry.acme.test/iam/patjanitor:v0.1.0"
	root := copyTree(t)
	own := filepath.Join(root, "overlays", "mine")
	if err := os.MkdirAll(own, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(own, "kustomization.yaml"), []byte("resources:\n  - ../../base\nnamespace: iam-tools\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"overlays/report-only", "overlays/enforce", "overlays/mine", "cronjob"} {
		t.Run(dir, func(t *testing.T) {
			d := filepath.Join(root, dir)
			setImage(t, d, image)
			n := 0
			for _, o := range build(t, d) {
				for _, c := range podContainers(t, o) {
					n++
					if c != image {
						t.Errorf("%s %s: image %q, want %q", o.Kind, o.Name, c, image)
					}
				}
			}
			if n == 0 {
				t.Fatal("no container in the build")
			}
		})
	}
}

// podContainers returns the images of a Deployment's or CronJob's
// containers.
func podContainers(t *testing.T, o object) []string {
	t.Helper()
	type pod struct {
		Spec struct {
			Containers []struct {
				Image string `yaml:"image"`
			} `yaml:"containers"`
		} `yaml:"spec"`
	}
	var imgs []string
	switch o.Kind {
	case "Deployment":
		d := decodeInto[struct {
			Spec struct {
				Template pod `yaml:"template"`
			} `yaml:"spec"`
		}](t, o)
		for _, c := range d.Spec.Template.Spec.Containers {
			imgs = append(imgs, c.Image)
		}
	case "CronJob":
		cj := decodeInto[struct {
			Spec struct {
				JobTemplate struct {
					Spec struct {
						Template pod `yaml:"template"`
					} `yaml:"spec"`
				} `yaml:"jobTemplate"`
			} `yaml:"spec"`
		}](t, o)
		for _, c := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers {
			imgs = append(imgs, c.Image)
		}
	}
	return imgs
}
