package main

import (
	"path/filepath"
	"strings"
)

// maxDataName bounds the data part of a default run directory name.
const maxDataName = 24

// dataName is the short, file-name-safe name of a data spec in default
// run directory names (the config hash there tells specs apart): the
// kind for named sets (cifar10, synthetic), the base name without
// extensions for a path (../data/cifar-10-binary.tar.gz, archive:PATH,
// folder:PATH give cifar-10-binary).
func dataName(spec string) string {
	name := spec
	if kind, arg, ok := strings.Cut(spec, ":"); ok && !strings.ContainsAny(kind, `/\.`) {
		name = kind
		if k := strings.ToLower(kind); k == "archive" || k == "folder" {
			name = arg
		}
	}
	if strings.ContainsAny(name, `/\.`) {
		name = filepath.Base(filepath.Clean(name))
		for ext := filepath.Ext(name); ext != "" && ext != name; ext = filepath.Ext(name) {
			name = strings.TrimSuffix(name, ext)
		}
	}
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, name)
	name = strings.Trim(name, "_-")
	if len(name) > maxDataName {
		name = strings.TrimRight(name[:maxDataName], "_-")
	}
	if name == "" {
		return "data"
	}
	return name
}
