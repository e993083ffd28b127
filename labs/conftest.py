# nbval runs the learner notebooks (labs/*.ipynb) and the instructor ones (labs/instructor/);
# the sources in labs/source/ are what both are built from, so they are not run a third time.
collect_ignore = ["source"]
