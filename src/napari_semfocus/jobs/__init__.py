"""The workflows, without Qt: score images, map focus, calibrate and apply a gate, fine-tune.

Each job is a generator function ``job(settings, cancel)`` over a plain settings dataclass: it
yields :class:`~napari_semfocus.progress.Status` / :class:`~napari_semfocus.progress.Progress`
(or training's typed updates), stops between steps once ``cancel`` is set, and returns a result
dataclass. The command line drives them with :func:`~napari_semfocus.progress.run_to_end` and
prints the updates; the widgets run them in a ``napari.qt.threading`` worker and put the results
on layers. Neither re-implements a step.
"""
