package main

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/critlab/critlab/runs"

	"github.com/urfave/cli/v2"
)

// configField offers one field of runs.Config as a flag. The field is
// found by its YAML key; the flag's type comes from the field and its
// default from runs.Default(), so neither is written twice.
type configField struct {
	key     string // YAML key, dotted for nested fields: fisher.images
	flag    string // flag name; empty means the key with - for _ and .
	aliases []string
	usage   string
}

// configFields are the config fields train takes as flags, in --help
// order. Fields left out (deficits, cuda, branch_from, ...) are set in a
// config file; device and threads come with runtimeFlags.
var configFields = []configField{
	{key: "model", usage: "zoo model (allcnn, resnet18, small) or .onnx file"},
	{key: "width", usage: "width multiplier of a zoo model (a model file takes only 1)"},
	{key: "data", usage: "data set: cifar10[:PATH], synthetic[:train=N,...], archive:PATH, ..."},
	{key: "subset", usage: "train on N training images (class-balanced, drawn from the seed); 0: all"},
	{key: "epochs", usage: "epochs to train"},
	{key: "batch_size", aliases: []string{"b"}, usage: "training batch size"},
	{key: "lr", usage: "initial learning rate"},
	{key: "lr_schedule", usage: "constant, step, exp (lr × decay^epoch) or cosine"},
	{key: "lr_decay", usage: "decay factor of exp (per epoch) and step (per lr-step epochs); 0: 0.97 for exp, 0.1 for step (step needs it given: the default is exp's)"},
	{key: "lr_step", usage: "epochs between decays of the step schedule (step only)"},
	{key: "restart_at_deficit_end", usage: "restart the lr schedule when a deficit window ends (no effect without one)"},
	{key: "momentum", usage: "SGD momentum"},
	{key: "nesterov", usage: "Nesterov momentum"},
	{key: "weight_decay", aliases: []string{"wd"}, usage: "L2 weight decay"},
	{key: "no_decay_bias_norm", usage: "no weight decay on biases and BatchNorm parameters"},
	{key: "label_smoothing", usage: "label smoothing in [0, 1)"},
	{key: "optimizer", usage: "sgd (when empty), adam or adamw, as in PyTorch (param_groups in a --config file)"},
	{key: "warmup_epochs", usage: "linear lr warmup over the first N epochs of any schedule (N < epochs)"},
	{key: "grad_clip", usage: "clip gradients to this global L2 norm (0: off)"},
	{key: "seed", usage: "seed of initialisation, data order, augmentation and deficits"},
	{key: "workers", usage: "data-loader goroutines per run (0: 1; batches are identical for any value)"},
	{key: "init_from", usage: "start from the weights of a run dir, checkpoint or .onnx model (fine-tuning)"},
	{key: "freeze", usage: "glob of parameter names not to train, e.g. 'conv1.*' (repeatable; needs --init-from)"},
	{key: "augment.hflip", flag: "hflip", usage: "random horizontal flips (--hflip=false to disable)"},
	{key: "augment.crop", flag: "crop", usage: "random crops after 4-pixel padding (--crop=false to disable)"},
	{key: "keep_checkpoints", usage: "epochs whose checkpoint to keep beside the latest, e.g. 40,80"},
	{key: "fisher.images", aliases: []string{"fisher"}, usage: "N fixed clean training images for the Fisher-trace estimate (0: off)"},
	{key: "fisher.samples", usage: "label samples per image of the Fisher-trace estimate (1 with --fisher)"},
	{key: "fisher.every", usage: "estimate the Fisher trace every K epochs (1 with --fisher; 0 is refused with images: --fisher 0 turns the estimate off)"},
	{key: "eval_every", usage: "evaluate on the test set every K epochs and the last (0: every epoch)"},
}

func (f configField) name() string {
	if f.flag != "" {
		return f.flag
	}
	return strings.NewReplacer("_", "-", ".", "-").Replace(f.key)
}

// configValue is the field of cfg (a pointer to runs.Config) with YAML key
// key; it panics on a key that names no field, which TestConfigFlags
// catches.
func configValue(cfg reflect.Value, key string) reflect.Value {
	v := cfg.Elem()
	for _, part := range strings.Split(key, ".") {
		t, found := v.Type(), false
		for i := 0; i < t.NumField(); i++ {
			if name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); name == part {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			panic(fmt.Sprintf("critlab: config key %q names no field of runs.Config", key))
		}
	}
	return v
}

// cliFlag builds f's flag; with def (the config the flag overrides) its
// default shows in --help, else suffix says where the default comes from.
func (f configField) cliFlag(def *runs.Config, suffix string) cli.Flag {
	usage := f.usage + suffix
	var zero runs.Config
	if def == nil {
		def = &zero
	}
	v := configValue(reflect.ValueOf(def), f.key)
	switch x := v.Interface().(type) {
	case string:
		return &cli.StringFlag{Name: f.name(), Aliases: f.aliases, Usage: usage, Value: x}
	case float64:
		return &cli.Float64Flag{Name: f.name(), Aliases: f.aliases, Usage: usage, Value: x}
	case int:
		return &cli.IntFlag{Name: f.name(), Aliases: f.aliases, Usage: usage, Value: x}
	case int64:
		return &cli.Int64Flag{Name: f.name(), Aliases: f.aliases, Usage: usage, Value: x}
	case bool:
		return &cli.BoolFlag{Name: f.name(), Aliases: f.aliases, Usage: usage, Value: x}
	case []int:
		return &cli.IntSliceFlag{Name: f.name(), Aliases: f.aliases, Usage: usage}
	case []string:
		return &cli.GenericFlag{Name: f.name(), Aliases: f.aliases, Usage: usage, Value: &multiFlag{}}
	}
	panic(fmt.Sprintf("critlab: config key %q: no flag for type %s", f.key, v.Type()))
}

// set copies f's flag into cfg when it was given.
func (f configField) set(c *cli.Context, cfg *runs.Config) {
	name := f.name()
	if !c.IsSet(name) {
		return
	}
	v := configValue(reflect.ValueOf(cfg), f.key)
	switch v.Interface().(type) {
	case string:
		v.SetString(c.String(name))
	case float64:
		v.SetFloat(c.Float64(name))
	case int:
		v.SetInt(int64(c.Int(name)))
	case int64:
		v.SetInt(c.Int64(name))
	case bool:
		v.SetBool(c.Bool(name))
	case []int:
		v.Set(reflect.ValueOf(c.IntSlice(name)))
	case []string:
		v.Set(reflect.ValueOf(multi(c, name)))
	}
}

// fieldFlags are the flags of the config fields with the given keys (all
// when none are given).
func fieldFlags(def *runs.Config, suffix string, keys ...string) []cli.Flag {
	var flags []cli.Flag
	for _, f := range configFields {
		if len(keys) == 0 || slices.Contains(keys, f.key) {
			flags = append(flags, f.cliFlag(def, suffix))
		}
	}
	return flags
}

// setFields copies the given config fields' flags into cfg.
func setFields(c *cli.Context, cfg *runs.Config, keys ...string) {
	for _, f := range configFields {
		if len(keys) == 0 || slices.Contains(keys, f.key) {
			f.set(c, cfg)
		}
	}
}
