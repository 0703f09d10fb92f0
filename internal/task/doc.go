// Package task runs one sub-topology for one partition: it decodes input
// records at the sources, drives them through the processors, keeps the
// task's stores behind write-back caches, and hands everything that leaves
// the task (sink records, repartition records, changelog records) to an
// Output. It knows nothing of Kafka clients: the App runtime and the
// broker-less test driver both run tasks, with different Outputs.
package task
