# threads.tcl - tclsh with its Thread package when present (else the interpreter alone): dicts,
# strings, and worker threads.
set d [dict create]
for {set i 0} {$i < 20000} {incr i} { dict set d $i [string repeat x [expr {$i % 50}]] }
puts "dict size [dict size $d]"
if {![catch {package require Thread}]} {
    set ids {}
    for {set i 0} {$i < 4} {incr i} {
        lappend ids [thread::create {
            set s ""
            for {set j 0} {$j < 20000} {incr j} { append s [expr {$j % 10}] }
            thread::wait
        }]
    }
    foreach id $ids { thread::release $id }
}
puts stderr done
exit 9
