module github.com/podtype/podtype/pod-watcher

go 1.26.0

replace github.com/podtype/podtype/shared => ../shared
