"""What the tests share besides fixtures (those are in tests/conftest.py); imported as `tests.support.<module>`.

splits: small MNISTSplits; cache_keys: keys under another torch or bnlib code; lab_server and notebook_page:
the browser test's JupyterLab and page objects; execution: a notebook run in a fresh kernel in quick mode;
random_states: the global random state captured and compared; significance_runs: small grids of runs with
known answers for the statistics tests; ranks: the workers that the process-group tests start;
notebook_sections: the code cells of one section of a notebook; moved_batchnorm: a model whose BatchNorm
layers are off their defaults.
Support modules never import test modules.
"""
