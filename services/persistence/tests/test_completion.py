from pressroom_contracts.jobs import JobRequest
from pressroom_persistence.completion import Artifacts, completion, missing

REQUEST = JobRequest(topic="A topic", platforms=["linkedin", "x"], image=True)


def test_waits_for_every_requested_artifact() -> None:
    assert missing(REQUEST, Artifacts()) == ["blog", "social:linkedin", "social:x", "image"]
    partial = Artifacts(blog_title="T", platforms=frozenset({"x"}))
    assert missing(REQUEST, partial) == ["social:linkedin", "image"]
    assert completion(REQUEST, partial) is None


def test_complete_with_blog_every_platform_and_image() -> None:
    done = completion(
        REQUEST, Artifacts(blog_title="T", platforms=frozenset({"x", "linkedin"}), image_key="k")
    )
    assert done is not None
    assert (done.blog_title, [p.value for p in done.platforms], done.image_key) == (
        "T",
        ["linkedin", "x"],
        "k",
    )


def test_no_image_needed_when_not_requested() -> None:
    request = JobRequest(topic="A topic", platforms=["threads"], image=False)
    done = completion(request, Artifacts(blog_title="T", platforms=frozenset({"threads"})))
    assert done is not None and done.image_key is None


def test_extra_platforms_do_not_stand_in_for_requested_ones() -> None:
    assert (
        completion(REQUEST, Artifacts(blog_title="T", platforms=frozenset({"x", "threads"}), image_key="k"))
        is None
    )
