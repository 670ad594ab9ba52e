# One installer at a time: tools/prefetch.sh may be installing while a test asks for the same
# tool, so an installer holds .tools/.NAME.lock while it works (hold NAME ... release). It releases
# before anything runs on: a server exec'd with the lock open would hold it for good.
# Sourced by the installers; needs $tools_dir.
hold() { mkdir -p "$tools_dir"; exec {held_lock}>"$tools_dir/.$1.lock"; flock "$held_lock"; }
release() { exec {held_lock}>&-; }
