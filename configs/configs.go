// Package configs embeds the sweep presets (*.yaml here), so `critlab
// sweep --config NAME` finds them from any working directory.
package configs

import "embed"

// FS holds the presets, NAME.yaml each.
//
//go:embed *.yaml
var FS embed.FS
