// Package tbevent writes and reads TensorBoard event files: scalar
// summaries, one Event per record, in TFRecord framing. TensorBoard reads
// every file of a directory whose name holds "tfevents" as one run, in name
// order, so a writer that appends to a file of its own (Create) never
// disturbs what a reader has already seen.
//
//	w, err := tbevent.Create(dir)
//	...
//	err = w.Write(epoch, time.Now(), []tbevent.Scalar{{Tag: "train/loss", Value: 0.7}})
//
// The format (tensorflow/core/util/event.proto, summary.proto, and
// tensorflow/core/lib/io/record_writer.cc) is small enough to encode by
// hand, which keeps TensorFlow's protobuf definitions out of the build;
// the tests check it against TensorBoard's own reader.
package tbevent
