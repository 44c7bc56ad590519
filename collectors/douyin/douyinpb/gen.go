// Package douyinpb holds the protobuf messages of Douyin's live webcast push
// protocol (PushFrame → gzip → Response → typed messages), generated from
// douyin.proto.
package douyinpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative douyin.proto
